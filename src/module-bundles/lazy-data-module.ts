// A stand-in for a CommonJS module that exports one big object of plain data, built key by key when read.
//
// jsforce's Metadata API module carries the type schema of the whole Metadata API (`ApiSchemas`: ~840 types,
// 280 KB of object literals) and builds all of it when it loads. Every SOAP call hands it to jsforce's response
// casting, which reads only the types of that response (a deploy reads about ten). Building the objects is
// most of the cost, not parsing them: each type has its own shape, so V8 makes a new hidden class for each.
//
// So a module bundle (module-bundle.ts) may ship such a module's export as JSON text per key, and this stand-in
// builds a value the first time it is read. The build checks that the JSON holds exactly what the module does
// (src/scripts/build-module-bundles.ts).
import { createRequire } from 'node:module';
import { cacheStandIn } from '../deferred-modules.js';

const require = createRequire(import.meta.url);

/** The data as a bundle ships it: each key's value as JSON text. */
export type DataTexts = Record<string, string>;

/**
 * An object that reads like the module's export (jsforce's soap.js reads `schemas[type]`, its metadata.js also
 * `type in schemas`): property reads, `in` and key listing answer from the texts, and a value is parsed on its
 * first read, then kept. Read-only: the modules bundled with it only read it.
 */
export function lazyData(texts: () => DataTexts): Record<string, unknown> {
  const built: Record<string, unknown> = Object.create(null);
  const has = (key: string | symbol): key is string => typeof key === 'string' && Object.hasOwn(texts(), key);
  const read = (key: string | symbol): unknown => {
    if (!has(key)) return undefined;
    return key in built ? built[key] : (built[key] = JSON.parse(texts()[key]!));
  };
  return new Proxy(Object.create(null) as Record<string, unknown>, {
    get: (_target, key) => read(key),
    has: (_target, key) => has(key),
    ownKeys: () => Object.keys(texts()),
    // An accessor, so listing the keys (which asks for each property's descriptor) builds nothing.
    getOwnPropertyDescriptor: (_target, key) => (has(key) ? { get: () => read(key), enumerable: true, configurable: true } : undefined),
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
}

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
