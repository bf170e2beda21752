// Libraries a task child loads, prebuilt as one file each with a V8 code cache.
//
// Every task runs in a fresh process, so each child loads its libraries from scratch: jsforce for a Salesforce
// operation, node-vault to redeem a Vault grant. Loaded module by module from node_modules, each costs about
// as much again as Node's own start-up: V8 parses every file (and again each function as it first runs), and
// Node resolves, stats and reads each of them. A library's loader describes its bundle (a BundleSpec: its
// entries, the dependencies it defers, a data module to ship as JSON), and `npm run build`
// (src/scripts/build-module-bundles.ts) writes, under module-bundles/<name>/ next to this module:
//   bundle.cjs        every module the entries may load, each as Node itself wraps a CommonJS module (its own
//                     source, unchanged, in a function of exports, require, module, __filename and __dirname:
//                     the same strictness, `this` and scope), with the files its requests resolved to;
//   bundle.cjs.cache  V8's code cache for it, made after running its entries, so running them is
//                     deserialising, not compiling;
//   data.json         the data module's export as JSON text per key, if the spec names one (lazy-data-module.ts);
//   manifest.json     what it was built from.
// Running a module from a bundle does what Node's loader does (commonjs-runner.ts): a real Module in the
// CommonJS module cache under the module's real file (so identity, cycles and later plain requires work as
// before), with a require that answers the requests the build resolved from the bundle and hands any other to
// Node (built-ins, the deferred dependencies, which are stand-ins in the module cache as when loading from
// node_modules, and anything the build could not resolve).
//
// A child uses a bundle only when every file it was built from is unchanged (size and modification time), it
// was built for the same spec, and it is whole (CRC-32s); otherwise, or when anything about it fails, the
// library loads from node_modules with a warning on the worker's stderr. V8 refuses a code cache made by
// another V8 or with other flags, and the bundle then compiles as usual; but V8 checks a cache against its
// source by length only, and not its integrity (a damaged one can crash the process), hence the CRC-32s.
import { readFileSync, statSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as vmConstants, Script } from 'node:vm';
import { crc32 } from 'node:zlib';
import { deferDependencies, deferFiles, type DeferredDependency } from '../deferred-modules.js';
import { bundlePaths, loaderModule, moduleRunner, type BundledModules } from './commonjs-runner.js';
import { installLazyDataModule } from './lazy-data-module.js';

export type { BundledModules } from './commonjs-runner.js';

const nodeRequire = createRequire(import.meta.url);

/** What a library's loader bundles. Requests are resolved from `from`, as the loader itself would require them. */
export interface BundleSpec {
  /** Its directory under module-bundles/, and its name in warnings. */
  name: string;
  /** URL of the loader module. */
  from: string;
  /** Entry name → request. */
  entries: Record<string, string>;
  /** Packages the library requires but Switchyard never uses: stand-ins (deferred-modules.ts), left out of the bundle. */
  deferred: readonly DeferredDependency[];
  /** A module that exports one big object of plain data: shipped as JSON per key, built when read. */
  lazyData?: { request: string; exportName: string };
  /**
   * Wraps every loading of the entries: from the bundle, from node_modules, and when the build makes the code
   * cache (so the cache holds what a child runs). For a library that must load under some condition.
   */
  whileLoading?: <T>(load: () => T) => T;
}

export const manifestFile = 'manifest.json';

export interface BundleManifest {
  format: 3;
  /** The Node version that made the code cache. */
  node: string;
  /** Of the spec the bundle was built for (specFingerprint()). */
  fingerprint: string;
  /** File names in the bundle's directory. */
  bundle: string;
  codeCache: string;
  crc32: { bundle: number; codeCache: number; data?: number };
  /** Entry name → its module. Module paths are relative to the bundle's directory. */
  entries: Record<string, string>;
  /** The files of the deferred dependencies, left out of the bundle. */
  deferred: string[];
  /** The data module, left out: the lazy stand-in takes its place. */
  lazyData?: { module: string; exportName: string; esModule: boolean; texts: string };
  /** Every module file bundled or left out, as it was when the bundle was built. */
  files: Array<{ file: string; size: number; mtimeMs: number }>;
}

/**
 * What became of the code cache: used; refused by V8 (made with other V8 flags); or not handed to V8 at all
 * (made by another Node, or damaged).
 */
export type CodeCacheUse = 'accepted' | 'rejected' | 'unusable';

export interface ModuleBundle {
  /** Runs an entry and returns its module's exports. */
  load(entry: string): unknown;
  codeCache: CodeCacheUse;
}

/** Where this process took a library from, for tests and benchmarks. */
export type BundleState = { from: 'bundle'; codeCache: CodeCacheUse } | { from: 'packages'; reason: string };

/** Where `npm run build` puts the spec's bundle. */
export function bundleDirectory(spec: Pick<BundleSpec, 'name'>): string {
  return fileURLToPath(new URL(`./${spec.name}/`, import.meta.url));
}

/** Identifies a spec's content (not where its loader is), so a bundle built for another spec is not used. */
export function specFingerprint(spec: BundleSpec): string {
  return JSON.stringify({ entries: spec.entries, deferred: spec.deferred.map((d) => [d.request, ...d.via]), lazyData: spec.lazyData ?? null });
}

const opened = new Map<string, { bundle: ModuleBundle | null; state: BundleState }>();

/**
 * The spec's bundle in `dir`, checked and compiled once per process; null when it is missing, stale or
 * unusable (then load the library from node_modules: requireEntries).
 */
export function openModuleBundle(spec: BundleSpec, dir: string = bundleDirectory(spec)): ModuleBundle | null {
  let entry = opened.get(dir);
  if (!entry) {
    try {
      entry = open(spec, dir);
    } catch (error) {
      entry = { bundle: null, state: { from: 'packages', reason: `the bundle in ${dir} failed to open: ${error instanceof Error ? error.message : String(error)}` } };
    }
    opened.set(dir, entry);
    if (entry.state.from === 'packages') {
      process.emitWarning(`${spec.name} loads from node_modules, not from its prebuilt bundle (${entry.state.reason}); run npm run build`, {
        code: 'SWITCHYARD_MODULE_BUNDLE',
      });
    }
  }
  return entry.bundle;
}

/**
 * The entries, by name and in that order: from the spec's bundle in `dir` when it is current (openModuleBundle),
 * else from node_modules (requireEntries).
 */
export function loadEntries(spec: BundleSpec, names: string[], dir: string = bundleDirectory(spec)): Record<string, unknown> {
  const bundle = openModuleBundle(spec, dir);
  if (!bundle) return requireEntries(spec, names);
  return loading(spec, () => Object.fromEntries(names.map((name) => [name, bundle.load(name)])));
}

/** The entries as Node loads them from node_modules (the deferred dependencies as stand-ins), by name. */
export function requireEntries(spec: BundleSpec, names: string[]): Record<string, unknown> {
  deferDependencies(spec.deferred);
  const require = createRequire(spec.from);
  return loading(spec, () => Object.fromEntries(names.map((name) => [name, require(spec.entries[name]!)])));
}

const loading = <T>(spec: BundleSpec, load: () => T): T => (spec.whileLoading ? spec.whileLoading(load) : load());

/**
 * Makes this process load the library from node_modules even though there is a bundle (for tests and
 * benchmarks that compare the two). Must come before the library is first loaded.
 */
export function skipModuleBundle(spec: BundleSpec, dir: string = bundleDirectory(spec)): void {
  opened.set(dir, { bundle: null, state: { from: 'packages', reason: 'skipped' } });
}

export function bundleState(spec: BundleSpec, dir: string = bundleDirectory(spec)): BundleState | undefined {
  return opened.get(dir)?.state;
}

function open(spec: BundleSpec, dir: string): { bundle: ModuleBundle | null; state: BundleState } {
  const stale = (reason: string) => ({ bundle: null, state: { from: 'packages' as const, reason } });
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(join(dir, manifestFile), 'utf8'));
  } catch {
    return stale(`no bundle in ${dir}`);
  }
  if (!isManifest(manifest)) return stale(`the bundle in ${dir} was built by another version of Switchyard`);
  if (manifest.fingerprint !== specFingerprint(spec)) return stale(`the bundle in ${dir} was built for another list of modules`);
  const changed = changedFile(dir, manifest);
  if (changed) return stale(`${changed} changed since the bundle was built`);
  // Everything is read and checked before anything is put in place: a bundle that fails a check changes nothing.
  const source = readFileSync(join(dir, manifest.bundle));
  if (crc32(source) !== manifest.crc32.bundle) return stale(`${join(dir, manifest.bundle)} is damaged`);
  let data: Buffer | undefined;
  if (manifest.lazyData) {
    data = readFileSync(join(dir, manifest.lazyData.texts));
    if (crc32(data) !== manifest.crc32.data) return stale(`${join(dir, manifest.lazyData.texts)} is damaged`);
  }
  const cachedData = manifest.node === process.version ? readCodeCache(join(dir, manifest.codeCache), manifest.crc32.codeCache) : undefined;

  // Compiled before the stand-ins go in: running the script only defines its modules, and if compiling fails
  // the library loads from node_modules with the module cache as it was.
  const { script, load } = compile(spec, dir, manifest, source.toString('utf8'), cachedData);
  installStandIns(dir, manifest, data?.toString('utf8'));
  const codeCache: CodeCacheUse = !cachedData ? 'unusable' : script.cachedDataRejected ? 'rejected' : 'accepted';
  return { bundle: { load, codeCache }, state: { from: 'bundle', codeCache } };
}

/** A manifest this code reads (`npm run build` and `npm test` rebuild the bundles; a dist/ may predate that). */
function isManifest(value: unknown): value is BundleManifest {
  const manifest = value as Partial<BundleManifest> | null;
  return (
    manifest?.format === 3 &&
    typeof manifest.fingerprint === 'string' &&
    typeof manifest.crc32?.bundle === 'number' &&
    typeof manifest.crc32.codeCache === 'number' &&
    typeof manifest.entries === 'object' &&
    manifest.entries !== null &&
    Object.values(manifest.entries).every((file) => typeof file === 'string') &&
    Array.isArray(manifest.deferred) &&
    Array.isArray(manifest.files) &&
    (manifest.lazyData === undefined || typeof manifest.crc32.data === 'number')
  );
}

/**
 * The first file the bundle was built from that has changed or gone since, or null. A package installed
 * later where Node would now look first (a new nested copy) goes unnoticed while the files the bundle holds
 * stay as they were: installs are followed by `npm run build` (`npm run setup`, the image).
 */
function changedFile(dir: string, manifest: BundleManifest): string | null {
  const inBundle = bundlePaths(dir);
  for (const { file, size, mtimeMs } of manifest.files) {
    const path = inBundle(file);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat || stat.size !== size || stat.mtimeMs !== mtimeMs) return path;
  }
  return null;
}

/** The code cache, if it is there and whole. */
function readCodeCache(file: string, expectedCrc32: number): Buffer | undefined {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return undefined;
  }
  return crc32(data) === expectedCrc32 ? data : undefined;
}

/** Stand-ins for what the bundle leaves out, put in the module cache before it runs. */
function installStandIns(dir: string, manifest: BundleManifest, data: string | undefined): void {
  deferFiles(manifest.deferred.map(bundlePaths(dir)));
  const lazy = manifest.lazyData;
  if (lazy) installLazyDataModule(join(dir, lazy.module), lazy.exportName, lazy.esModule, data!);
}

/**
 * Compiles the bundle as Node compiles a CommonJS file (the same wrapper, so the same source the code cache
 * was made for) and runs it, which only defines its modules; `load` runs an entry's module for the library's
 * loader, as when the loader requires it.
 */
function compile(
  spec: BundleSpec,
  dir: string,
  manifest: BundleManifest,
  source: string,
  cachedData?: Buffer,
  /** The script's name, when not its file (makeCodeCache). */
  scriptName?: string,
): { script: Script; load: (entry: string) => unknown } {
  const file = join(dir, manifest.bundle);
  const script = new Script(Module.wrap(source), {
    filename: scriptName ?? file,
    ...(cachedData ? { cachedData } : {}),
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const bundle = { exports: {} as BundledModules };
  (script.runInThisContext() as (...args: unknown[]) => void)(bundle.exports, nodeRequire, bundle, file, dir);
  const run = moduleRunner(dir, bundle.exports);
  const loader = loaderModule(fileURLToPath(spec.from));
  const load = (entry: string): unknown => {
    if (!Object.hasOwn(manifest.entries, entry)) throw new Error(`The bundle in ${dir} has no entry ${entry}`);
    return run(manifest.entries[entry]!, loader);
  };
  return { script, load };
}

/**
 * Makes the code cache of the spec's bundle in `dir` (at build time, in a fresh process started as a task
 * child is): compiles it as open() does, runs every entry, so the functions that run while the library loads
 * are compiled too, and returns V8's cache data.
 *
 * `finalDir` is where the bundle will be used from. A script compiled with the cache takes its name (which
 * stack traces show) from the cache, not from its own `filename`, so the cache must be made under that name
 * even though the build makes it in a work directory.
 */
export function makeCodeCache(spec: BundleSpec, dir: string, manifest: BundleManifest, finalDir: string): Buffer {
  const source = readFileSync(join(dir, manifest.bundle), 'utf8');
  const { script, load } = compile(spec, dir, manifest, source, undefined, join(finalDir, manifest.bundle));
  installStandIns(dir, manifest, manifest.lazyData && readFileSync(join(dir, manifest.lazyData.texts), 'utf8'));
  loading(spec, () => {
    for (const entry of Object.keys(manifest.entries)) load(entry);
  });
  return script.createCachedData();
}
