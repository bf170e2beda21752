// Loads jsforce inside the per-task child: its core, plus the API modules an operation asks for (each
// registers itself on Connection when imported). The package's index is never imported: it also loads Bulk,
// Bulk 2.0, Chatter, Analytics, Apex, Tooling, SOAP and the Streaming API (with its Faye client).
//
// jsforce also requires, when it loads, packages that only serve paths Switchyard's operations never take.
// Together they are about half of what loading jsforce costs (node-fetch's whatwg-url fallback alone parses
// a 260 KB Unicode table), which every Salesforce child would pay again, since children are never reused.
// Each of them is put in the CommonJS module cache as a stand-in that loads the real package on first use,
// so a path that does need one still works; it only pays then. test/load-jsforce.test.ts checks both: a
// Metadata API deploy, a query and a token refresh load none of them, and each still works when used.
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A package jsforce (or one of its dependencies) requires eagerly but Switchyard's operations never use. */
export interface DeferredDependency {
  /** The request as its importer writes it. */
  request: string;
  /** The chain of importers it is resolved from, starting at jsforce's core. */
  via: string[];
  /** What would use it, and why no Switchyard operation does. */
  usedFor: string;
}

export const deferredDependencies: readonly DeferredDependency[] = [
  {
    request: 'whatwg-url',
    via: ['jsforce/lib/core.js', 'node-fetch'],
    usedFor: "node-fetch's URL class where the runtime has none; Node always has one",
  },
  {
    request: 'form-data',
    via: ['jsforce/lib/core.js'],
    usedFor: 'multipart bodies: REST-style Metadata deploys (rest: true) and blob uploads; deploys here use SOAP',
  },
  ...['csv-parse', 'csv-parse/sync', 'csv-stringify', 'csv-stringify/sync'].map((request) => ({
    request,
    via: ['jsforce/lib/core.js'],
    usedFor: 'CSV bodies (Bulk API, text/csv responses); operations here get JSON and XML',
  })),
  {
    request: 'xmlbuilder',
    via: ['jsforce/lib/core.js', 'xml2js'],
    usedFor: "xml2js's Builder; jsforce writes SOAP envelopes itself and only parses XML with xml2js",
  },
  {
    request: 'https-proxy-agent',
    via: ['jsforce/lib/core.js'],
    usedFor: 'requests through an HTTP(S) proxy: jsforce uses one when HTTPS_PROXY or HTTP_PROXY is set (the launcher passes them on), and then loads it on the first request',
  },
];

/** The file a dependency's request resolves to, exactly as its importer would resolve it. */
export function resolveDeferred(dependency: DeferredDependency): string {
  let importer = require.resolve(dependency.via[0]!);
  for (const next of dependency.via.slice(1)) importer = createRequire(importer).resolve(next);
  return createRequire(importer).resolve(dependency.request);
}

/**
 * Puts a stand-in for a CommonJS module in the module cache. The stand-in loads the real module on the first
 * call, construction or property read, then forwards everything to it; the real module replaces it in the
 * cache, so later importers get the real one directly.
 */
function defer(request: string, file: string): void {
  if (require.cache[file]) return; // loaded already (for real, or deferred by an earlier call)
  let real: object | undefined;
  const load = (): object => {
    if (!real) {
      delete require.cache[file];
      real = require(file) as object;
    }
    return real;
  };
  const standIn = new Module(file);
  standIn.filename = file;
  standIn.loaded = true;
  // A bound function as the target: it can be called and constructed like a module that exports a function,
  // and has no own `prototype` (a plain function's is non-configurable, which Proxy invariants would then force
  // on every module's answers). Every trap but the two shortcuts below loads the module and forwards to it.
  standIn.exports = new Proxy(function deferredModule() {}.bind(null), {
    get(_target, key) {
      // TypeScript's and node-fetch's import helpers ask this while importing; none of these packages is an
      // ES module compiled to CommonJS (the test checks), so the answer needs no loading.
      if (key === '__esModule' && !real) return undefined;
      // jsforce asks `body instanceof FormData` of every request body. Until the package is loaded no instance
      // of anything it exports can exist (construction goes through this stand-in and loads it).
      if (key === Symbol.hasInstance && !real) return () => false;
      return Reflect.get(load(), key);
    },
    has: (_target, key) => Reflect.has(load(), key),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor(_target, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
      // Reported configurable: the target does not have the property, and a proxy may not claim otherwise.
      return descriptor && { ...descriptor, configurable: true };
    },
    getPrototypeOf: () => Reflect.getPrototypeOf(load()),
    set: (_target, key, value) => Reflect.set(load(), key, value),
    deleteProperty: (_target, key) => Reflect.deleteProperty(load(), key),
    // A non-configurable property cannot be reported for a key the target lacks, nor can the target be frozen
    // behind the module's back: both are refused (no jsforce or node-fetch path does either).
    defineProperty: (_target, key, descriptor) => descriptor.configurable !== false && Reflect.defineProperty(load(), key, descriptor),
    isExtensible: () => true,
    preventExtensions: () => false,
    apply: (_target, self, args) => Reflect.apply(load() as (...args: unknown[]) => unknown, self, args),
    construct: (_target, args, newTarget) => Reflect.construct(load() as new (...args: unknown[]) => object, args, newTarget) as object,
  });
  require.cache[file] = standIn;
  standIns.set(request, standIn);
}

let deferred = false;
const standIns = new Map<string, Module>();

/**
 * Where each dependency stands in this process (for tests and benchmarks): `deferred` while its stand-in is
 * unused, `loaded` once the real package is in the module cache, `absent` if nothing has required it.
 */
export function deferredDependencyStates(): Record<string, 'deferred' | 'loaded' | 'absent'> {
  return Object.fromEntries(
    deferredDependencies.map((dependency) => {
      const cached = require.cache[resolveDeferred(dependency)];
      return [dependency.request, !cached ? 'absent' : cached === standIns.get(dependency.request) ? 'deferred' : 'loaded'];
    }),
  );
}

/** Defers every dependency in deferredDependencies; safe to call more than once. */
export function deferUnusedJsforceDependencies(): void {
  if (deferred) return;
  deferred = true;
  for (const dependency of deferredDependencies) defer(dependency.request, resolveDeferred(dependency));
}

/** jsforce API modules an operation may ask for; each registers itself on Connection when loaded. */
const apiModules = {
  metadata: 'jsforce/lib/api/metadata.js',
};

export type JsforceApi = keyof typeof apiModules;

/**
 * jsforce's core (Connection, OAuth2, query, sobject) with the given APIs registered on Connection.
 *
 * Loaded with require(), not import(): importing CommonJS from an ES module makes Node scan each module's
 * source for its named exports, following every re-export (jsforce's core re-exports six modules, the
 * Metadata API its 280 KB schema), which about doubles the CPU the load takes.
 */
export function loadJsforce(apis: JsforceApi[] = []): typeof import('jsforce/lib/core.js') {
  deferUnusedJsforceDependencies();
  const core = require('jsforce/lib/core.js') as typeof import('jsforce/lib/core.js');
  for (const api of apis) require(apiModules[api]);
  return core;
}
