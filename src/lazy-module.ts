// A module's exports that load the module on first use: the stand-in behind deferred packages
// (deferred-modules.ts) and behind the built-ins and packages the child snapshot leaves out until a task uses
// them (workers/child-snapshot/). It imports nothing, so the snapshot's build can put it in front of the
// modules it bundles.

export interface LazyModuleOptions {
  /**
   * Keys read as absent until the module is loaded, without loading it. For a Node built-in, `default` (import
   * helpers ask `'default' in module`; no built-in's CommonJS exports have one).
   */
  absent?: readonly string[];
  /** Keys whose value is itself lazy until used (node-fetch reads `http.STATUS_CODES` when it loads). */
  lazyKeys?: readonly string[];
}

/**
 * An object that stands for the module `load` returns: the first call, construction or property read loads it
 * (once), and everything is then forwarded to it.
 */
export function lazyModule(load: () => object, options: LazyModuleOptions = {}): object {
  let real: object | undefined;
  const module = (): object => (real ??= load());
  const absent = new Set<string | symbol>(options.absent ?? []);
  const lazyKeys = new Map<string | symbol, object>();
  for (const key of options.lazyKeys ?? []) lazyKeys.set(key, lazyModule(() => Reflect.get(module(), key) as object));
  // A bound function as the target: it can be called and constructed like a module that exports a function,
  // and has no own `prototype` (a plain function's is non-configurable, which Proxy invariants would then force
  // on every module's answers). Every trap but the shortcuts below loads the module and forwards to it.
  return new Proxy(function lazyModule() {}.bind(null), {
    get(_target, key) {
      if (!real) {
        // TypeScript's and node-fetch's import helpers ask this while importing; no module loaded lazily here is
        // an ES module compiled to CommonJS (load-jsforce.test.ts and vault-store.test.ts check), so the answer
        // needs no loading.
        if (key === '__esModule' || absent.has(key)) return undefined;
        // jsforce asks `body instanceof FormData` of every request body, axios `agent instanceof HttpsProxyAgent`.
        // Until the module is loaded no instance of anything it exports can exist (construction goes through
        // this stand-in and loads it).
        if (key === Symbol.hasInstance) return () => false;
        const lazy = lazyKeys.get(key);
        if (lazy) return lazy;
      }
      return Reflect.get(module(), key);
    },
    has: (_target, key) => (!real && absent.has(key) ? false : Reflect.has(module(), key)),
    ownKeys: () => Reflect.ownKeys(module()),
    getOwnPropertyDescriptor(_target, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(module(), key);
      // Reported configurable: the target does not have the property, and a proxy may not claim otherwise.
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(module()),
    set: (_target, key, value) => Reflect.set(module(), key, value),
    deleteProperty: (_target, key) => Reflect.deleteProperty(module(), key),
    // A non-configurable property cannot be reported for a key the target lacks, nor can the target be frozen
    // behind the module's back: both are refused (no module loaded lazily here does either).
    defineProperty: (_target, key, descriptor) => descriptor.configurable !== false && Reflect.defineProperty(module(), key, descriptor),
    isExtensible: () => true,
    preventExtensions: () => false,
    apply: (_target, self, args) => Reflect.apply(module() as (...args: unknown[]) => unknown, self, args),
    construct: (_target, args, newTarget) => Reflect.construct(module() as new (...args: unknown[]) => object, args, newTarget) as object,
  });
}
