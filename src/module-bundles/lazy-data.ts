// One big object of plain data, built key by key when read (lazy-data-module.ts says why). It imports nothing:
// the child snapshot's build bundles it in front of jsforce (src/scripts/build-child-snapshot.ts), as module
// bundles put it in the module cache (lazy-data-module.ts).

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
