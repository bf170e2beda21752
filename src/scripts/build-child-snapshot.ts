// Bundles the child snapshot's script (src/workers/child-snapshot/snapshot-main.ts) with jsforce into one
// CommonJS file, dist/workers/child-snapshot/snapshot.cjs, which a worker makes its child snapshot from
// (child-snapshot.ts). `npm run build` runs it after tsc; the image runs it in its build stage (rolldown is a
// development dependency). Without the file, workers start every child without a snapshot.
//
// Node 20 makes a snapshot of one script that may require built-in modules only, so everything jsforce loads is
// bundled in, with three kinds of module replaced (see snapshot-main.ts for why):
//   - Node's http, https, tls, child_process, dgram, module and vm: lazy modules that require the real one on
//     first use;
//   - the packages jsforce's bundle defers (jsforce-bundle.ts): lazy modules that require the real package
//     from node_modules on first use, by its path relative to the bundle;
//   - jsforce's Metadata API schema: the same lazy data as the module bundle's (lazy-data.ts), one JSON text
//     per type, checked to read back as the module's values (dataAsTexts).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown, type Plugin } from 'rolldown';
import { resolvableFiles } from '../deferred-modules.js';
import { fileDigest, scriptFilesSuffix, snapshotScriptFile, type ScriptFile } from '../workers/child-snapshot/child-snapshot.js';
import { jsforceBundle } from '../workers/operations/salesforce/jsforce-bundle.js';
import { dataAsTexts } from './build-module-bundles.js';
import { invokedDirectly } from './invoked-directly.js';

/**
 * Built-in modules Node 20's snapshot builder cannot hold (http, https, tls) or does not vouch for
 * (child_process and dgram, which jsforce loads; module and vm, which the module bundles' loader uses in the
 * child). Its warnings name any other.
 */
const lazyBuiltins = new Set(['http', 'https', 'tls', 'child_process', 'dgram', 'module', 'vm']);

const lazyBuiltin = '\0switchyard-lazy-builtin:';
const lazyPackage = '\0switchyard-lazy-package:';
const lazySchema = '\0switchyard-lazy-schema';
const schemaTextsFile = 'metadata-schema.json';

/** dist/, where the script is bundled from: also when this module runs from its TypeScript source (tests). */
const distRoot = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../../dist/' : '../', import.meta.url));
const distFile = (path: string) => join(distRoot, path);

/**
 * Bundles `input` (by default the snapshot's script; the dispatch benchmark bundles its own main function with
 * the same preload) into `output`.
 */
export async function buildChildSnapshotScript({ input = distFile('workers/child-snapshot/snapshot-main.js'), output = snapshotScriptFile() } = {}): Promise<void> {
  const lazyModuleFile = distFile('lazy-module.js');
  const lazyDataFile = distFile('module-bundles/lazy-data.js');
  const deferredFiles = new Set(resolvableFiles(jsforceBundle.deferred));
  const lazyData = jsforceBundle.lazyData!;
  const schemaFile = createRequire(jsforceBundle.from).resolve(lazyData.request);
  const outputDir = dirname(output);

  const plugin: Plugin = {
    name: 'switchyard-child-snapshot',
    async resolveId(source, importer) {
      // What the lazy modules below require is the real thing (lazy-module.js itself is bundled).
      if ((importer?.startsWith(lazyBuiltin) || importer?.startsWith(lazyPackage)) && source !== lazyModuleFile) return { id: source, external: true };
      const builtin = source.startsWith('node:') ? source.slice(5) : source;
      if (lazyBuiltins.has(builtin)) return lazyBuiltin + builtin;
      const resolved = await this.resolve(source, importer, { skipSelf: true });
      if (!resolved || resolved.external) return resolved;
      if (deferredFiles.has(resolved.id)) return lazyPackage + relative(outputDir, resolved.id);
      if (resolved.id === schemaFile) return lazySchema;
      return resolved;
    },
    // Modules of Switchyard's own are ES modules; in the bundle, each import.meta.url must still name the
    // module's own file in dist/ (where it finds its module bundle, for one), not the bundle.
    transform(code, id) {
      if (!id.startsWith(distRoot) || !code.includes('import.meta.url')) return null;
      // Names of their own: a module may have a `require` of its own (createRequire) that the bundle renames.
      const imports = "import { pathToFileURL as switchyardFileUrl } from 'node:url';\nimport { join as switchyardJoin } from 'node:path';\n";
      const url = `switchyardFileUrl(switchyardJoin(__dirname, ${JSON.stringify(relative(outputDir, id))})).href`;
      return { code: imports + code.replaceAll('import.meta.url', `(${url})`), map: null };
    },
    load(id) {
      if (id.startsWith(lazyBuiltin)) {
        const name = id.slice(lazyBuiltin.length);
        // node-fetch reads http.STATUS_CODES as it loads; import helpers ask `'default' in module`.
        const options = { absent: ['default'], lazyKeys: name === 'http' ? ['STATUS_CODES'] : [] };
        return `const { lazyModule } = require(${JSON.stringify(lazyModuleFile)});\nmodule.exports = lazyModule(() => require(${JSON.stringify(`node:${name}`)}), ${JSON.stringify(options)});\n`;
      }
      if (id.startsWith(lazyPackage)) {
        // Required through Node's loader when first used, from where the bundle is then (its __dirname is the
        // snapshot's, which a worker makes from this file where it is).
        const path = id.slice(lazyPackage.length);
        return [
          `const { lazyModule } = require(${JSON.stringify(lazyModuleFile)});`,
          `module.exports = lazyModule(() => require('node:module').createRequire(__filename)(require('node:path').join(__dirname, ${JSON.stringify(path)})));`,
          '',
        ].join('\n');
      }
      if (id === lazySchema) {
        const { texts, esModule } = dataAsTexts(schemaFile, lazyData.exportName);
        if (!esModule) throw new Error(`${schemaFile} is no longer an ES module compiled to CommonJS; the lazy schema would read differently`);
        // The texts stay in a file beside the bundle until a schema is first read: in the snapshot they would
        // be heap every child deserialises.
        writeWhole(join(outputDir, schemaTextsFile), JSON.stringify(texts));
        return [
          `import { lazyData } from ${JSON.stringify(lazyDataFile)};`,
          `import { readFileSync } from 'node:fs';`,
          `import { join } from 'node:path';`,
          'let parsed;',
          `export const ${lazyData.exportName} = lazyData(() => (parsed ??= JSON.parse(readFileSync(join(__dirname, ${JSON.stringify(schemaTextsFile)}), 'utf8'))));`,
          '',
        ].join('\n');
      }
      return null;
    },
  };

  // One file, no import() left (code restored from a snapshot has none): a dynamic import of a bundled module
  // runs it then, one of a built-in requires it.
  mkdirSync(outputDir, { recursive: true });
  const bundle = await rolldown({ input, platform: 'node', plugins: [plugin], logLevel: 'warn' });
  try {
    const { output: chunks } = await bundle.generate({ format: 'cjs', codeSplitting: false, dynamicImportInCjs: false, sourcemap: false });
    const chunk = chunks.find((item) => item.type === 'chunk')!;
    // What it was bundled from, so a worker does not make a snapshot of a script older than dist/ or
    // node_modules (child-snapshot.ts checks their content).
    const files: ScriptFile[] = [...chunk.moduleIds.filter((id) => isAbsolute(id)), schemaFile, join(outputDir, schemaTextsFile)].map((file) => ({
      file: relative(outputDir, file),
      sha256: fileDigest(file),
    }));
    writeWhole(output + scriptFilesSuffix, JSON.stringify(files));
    writeWhole(output, chunk.code);
  } finally {
    await bundle.close();
  }
}

/** Written whole or not at all: a worker may be reading the file it replaces. */
function writeWhole(file: string, content: string): void {
  const work = `${file}.${process.pid}.tmp`;
  writeFileSync(work, content);
  renameSync(work, file);
}

if (invokedDirectly(import.meta.url)) {
  await buildChildSnapshotScript();
  process.stdout.write(`child snapshot script: ${snapshotScriptFile()}\n`);
}
