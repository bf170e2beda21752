// jsforce's Metadata API module carries the type schema of the whole Metadata API (`ApiSchemas`: ~840 types,
// 280 KB of object literals) and builds all of it when it loads. Every SOAP call hands it to jsforce's response
// casting, which reads only the types of that response (a deploy reads about ten). Building the objects is
// most of the cost, not parsing them: each type has its own shape, so V8 makes a new hidden class for each.
//
// So the jsforce bundle (jsforce-bundle.ts) ships the schema as JSON text per type, and this stand-in for
// jsforce's schema module builds a type the first time jsforce reads it. The build checks that the JSON holds
// exactly what the module does (src/scripts/build-jsforce-bundle.ts).
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The schema as the bundle ships it: each type's definition as JSON text, by type name. */
export type SchemaTexts = Record<string, string>;

/**
 * An object that reads like jsforce's `ApiSchemas` (jsforce/lib/soap.js reads `schemas[type]`,
 * jsforce/lib/api/metadata.js also `type in schemas`): property reads, `in` and key listing answer from the
 * texts, and a type is parsed on its first read, then kept. Read-only, as jsforce only reads it.
 */
export function lazySchemas(texts: () => SchemaTexts): Record<string, unknown> {
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
 * Puts the stand-in in the CommonJS module cache under the file of jsforce's schema module, so jsforce's
 * `require('./metadata/schema')` gets it. `texts` is the bundle's JSON, parsed when jsforce first reads a type.
 */
export function installLazySchema(schemaModuleFile: string, textsJson: string): void {
  let texts: SchemaTexts | undefined;
  const standIn = new Module(schemaModuleFile);
  standIn.filename = schemaModuleFile;
  standIn.loaded = true;
  // The module's exports as TypeScript compiles them: an ES module flag and the one named export.
  standIn.exports = Object.defineProperties({}, {
    __esModule: { value: true },
    ApiSchemas: { value: lazySchemas(() => (texts ??= JSON.parse(textsJson) as SchemaTexts)), enumerable: true },
  });
  require.cache[schemaModuleFile] = standIn;
}
