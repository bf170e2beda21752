// A stand-in for a CommonJS module that exports one big object of plain data, built key by key when read.
//
// jsforce's Metadata API module carries the type schema of the whole Metadata API (`ApiSchemas`: ~840 types,
// 280 KB of object literals) and builds all of it when it loads. Every SOAP call hands it to jsforce's response
// casting, which reads only the types of that response (a deploy reads about ten). Building the objects is
// most of the cost, not parsing them: each type has its own shape, so V8 makes a new hidden class for each.
//
// So a module bundle (module-bundle.ts) may ship such a module's export as JSON text per key, and this stand-in
// builds a value the first time it is read. The build checks that the JSON holds exactly what the module does
// (src/scripts/build-module-bundles.ts). The child snapshot holds the same stand-in (lazy-data.ts).
import { createRequire } from 'node:module';
import { cacheStandIn } from '../deferred-modules.js';
import { lazyData, type DataTexts } from './lazy-data.js';

const require = createRequire(import.meta.url);

/**
 * Puts the stand-in in the CommonJS module cache under the module's file, so whoever requires it gets it.
 * `textsJson` is the bundle's JSON, parsed when a value is first read.
 */
export function installLazyDataModule(file: string, exportName: string, esModule: boolean, textsJson: string): void {
  if (require.cache[file]) return; // loaded already (for real, or by an earlier call): keep that one
  let texts: DataTexts | undefined;
  // The module's exports: its one export, and the ES module flag TypeScript adds if the module had it.
  cacheStandIn(
    file,
    Object.defineProperties({}, {
      ...(esModule ? { __esModule: { value: true } } : {}),
      [exportName]: { value: lazyData(() => (texts ??= JSON.parse(textsJson) as DataTexts)), enumerable: true },
    }),
  );
}
