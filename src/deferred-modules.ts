// Stand-ins for CommonJS packages a library requires when it loads but that a task child uses only on rare paths
// (a configured proxy) or never.
//
// Task children are never reused, so each one pays again for every module it loads; jsforce
// (workers/operations/salesforce/load-jsforce.ts) and node-vault (secrets/vault-unwrap.ts) each pull in
// packages that only serve paths Switchyard never takes (multipart bodies, CSV, proxies, ...). Each such
// package is put in the CommonJS module cache as a stand-in that loads the real package on first use, so a
// path that does need one still works; it only pays then. The library's own list says why each is unused,
// and a test per library runs its real operations in a fresh process and checks none of them got loaded.
import Module, { createRequire } from 'node:module';
import { lazyModule } from './lazy-module.js';

const require = createRequire(import.meta.url);

/** A package a library (or one of its dependencies) requires eagerly but Switchyard never uses. */
export interface DeferredDependency {
  /** The request as its importer writes it. */
  request: string;
  /** The chain of importers it is resolved from, starting at the library's entry module. */
  via: string[];
  /** What would use it, and why nothing Switchyard runs does. */
  usedFor: string;
}

export type DeferredState = 'deferred' | 'loaded' | 'absent';

/** The file a dependency's request resolves to, exactly as its importer would resolve it. */
export function resolveDeferred(dependency: DeferredDependency): string {
  let importer = require.resolve(dependency.via[0]!);
  for (const next of dependency.via.slice(1)) importer = createRequire(importer).resolve(next);
  return createRequire(importer).resolve(dependency.request);
}

/** Stand-ins by file: two libraries may defer the same package (jsforce and axios both require form-data). */
const standIns = new Map<string, Module>();

/**
 * Puts a stand-in for a CommonJS module in the module cache. The stand-in loads the real module on the first
 * call, construction or property read, then forwards everything to it; the real module replaces it in the
 * cache, so later importers get the real one directly.
 */
function defer(file: string): void {
  if (require.cache[file]) return; // loaded already (for real, or deferred by an earlier call)
  const standIn = cacheStandIn(
    file,
    lazyModule(() => {
      delete require.cache[file];
      return require(file) as object;
    }),
  );
  standIns.set(file, standIn);
}

/**
 * Puts a module with these exports in the CommonJS module cache under `file`, already loaded, so whoever
 * requires that file gets it (a stand-in: this module's deferred ones, a module bundle's lazy data).
 */
export function cacheStandIn(file: string, exports: unknown): Module {
  const standIn = new Module(file);
  standIn.filename = file;
  standIn.loaded = true;
  standIn.exports = exports;
  require.cache[file] = standIn;
  return standIn;
}

/**
 * Defers each dependency not loaded yet; safe to call more than once, and for lists that overlap. One that no
 * longer resolves from where it is listed (a library update moved or dropped it) is left alone: the library
 * then loads what it loads, and only the saving is lost (the library's test says so).
 */
export function deferDependencies(dependencies: readonly DeferredDependency[]): void {
  deferFiles(resolvableFiles(dependencies));
}

/** The files the dependencies that still resolve from where they are listed resolve to. */
export function resolvableFiles(dependencies: readonly DeferredDependency[]): string[] {
  return dependencies.flatMap((dependency) => {
    try {
      return [resolveDeferred(dependency)];
    } catch {
      return [];
    }
  });
}

/**
 * Defers files already resolved (a prebuilt bundle lists the files it leaves out): the same as
 * deferDependencies without resolving anything.
 */
export function deferFiles(files: readonly string[]): void {
  for (const file of files) defer(file);
}

/**
 * Where each dependency stands in this process (for tests and benchmarks): `deferred` while its stand-in is
 * unused, `loaded` once the real package is in the module cache, `absent` if nothing has required it. Throws
 * for a dependency that no longer resolves from where it is listed.
 */
export function deferredStates(dependencies: readonly DeferredDependency[]): Record<string, DeferredState> {
  return Object.fromEntries(
    dependencies.map((dependency) => {
      const file = resolveDeferred(dependency);
      const cached = require.cache[file];
      return [dependency.request, !cached ? 'absent' : cached === standIns.get(file) ? 'deferred' : 'loaded'];
    }),
  );
}
