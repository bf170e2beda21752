// A fresh Node process that loads a module bundle's entry the way a task child loads a library: from the bundle
// in `dir`, or (without `dir`) from its files. Driven over IPC by test/module-bundle.test.ts:
//   { job: 'load', specModule, entry, dir? } imports `bundleSpec` from specModule, loads `entry`, and answers
//     with the entry's report(), the value of its dynamic() import, whether a plain require() of the entry's file
//     now gets that very module, where it came from, and the file a stack trace names for the entry's code.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { serveProbe } from './probe-child.mjs';
import { bundleState, openModuleBundle, requireEntries } from '../../dist/module-bundles/module-bundle.js';

async function load({ specModule, entry, dir }) {
  const { bundleSpec } = await import(pathToFileURL(specModule).href);
  const exports = dir ? openModuleBundle(bundleSpec, dir)?.load(entry) : requireEntries(bundleSpec, [entry])[entry];
  if (!exports) throw new Error(`the bundle in ${dir} did not open: ${JSON.stringify(bundleState(bundleSpec, dir))}`);
  const plain = createRequire(bundleSpec.from)(bundleSpec.entries[entry]);
  return {
    report: exports.report(),
    dynamic: await exports.dynamic(),
    plainRequireIsSame: plain === exports,
    stackFile: /\((.*):\d+:\d+\)$/.exec(exports.stackTop())?.[1] ?? null,
    state: dir ? bundleState(bundleSpec, dir) : null,
  };
}

serveProbe({ load }, []);
