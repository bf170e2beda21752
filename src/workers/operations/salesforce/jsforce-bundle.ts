// jsforce as one prebuilt file with a V8 code cache, for the task child.
//
// Every Salesforce task runs in a fresh process, so each one loads jsforce from scratch. Loaded module by
// module from node_modules, that costs about twice what Node's own start-up does: V8 parses ~60 files (and
// again each function as it first runs), and Node resolves, stats and reads each of them. `npm run build`
// (src/scripts/build-jsforce-bundle.ts) writes, next to this module:
//   jsforce.cjs        the modules a Salesforce operation loads, as one CommonJS file; the packages left out
//                      (load-jsforce.ts's deferred dependencies, the Metadata API schema) are required from it
//                      by relative path, so they resolve to the very files jsforce would load;
//   jsforce.cjs.cache  V8's code cache for it, made after running its entries: compiling becomes
//                      deserialising, for the functions that run at load too;
//   metadata-schema.json  jsforce's Metadata API schema as JSON text per type (below);
//   manifest.json      written last: what the bundle holds, and the versions of the packages it was built from.
// The bundle is used only when every package in it still has the version it was built from, so a changed
// node_modules without a rebuild falls back to loading from node_modules (with a warning on the worker's
// stderr), never to stale code. V8 itself refuses a code cache made by another V8 or with other flags; the
// bundle then compiles as usual. V8 checks a code cache against its source by length only, and does not check
// that the cache itself is intact (a damaged one can crash the process), so the manifest has a CRC-32 of both:
// a cache is used only for the very source it was made from, and only whole.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as vmConstants, Script } from 'node:vm';
import { crc32 } from 'node:zlib';
import { deferFiles } from '../../../deferred-modules.js';

const require = createRequire(import.meta.url);

export const bundleDirectory = fileURLToPath(new URL('./jsforce-bundle/', import.meta.url));

export interface BundleManifest {
  format: 1;
  /** The Node version that made the code cache. */
  node: string;
  bundle: string;
  codeCache: string;
  /** CRC-32 of the bundle's source and of its code cache, as made. */
  crc32: { bundle: number; codeCache: number };
  /** What the bundle exports, each a function that loads that part of jsforce: `core` and the API modules. */
  entries: string[];
  /** package.json of every package with a module in the bundle (relative to the bundle's directory), with its version then. */
  packages: Array<{ packageJson: string; version: string }>;
  /** The files of load-jsforce.ts's deferred dependencies (relative): stand-ins, as when loading from node_modules. */
  deferred: string[];
  /** jsforce's Metadata API schema module (relative) and the file of its JSON texts. */
  schema: { module: string; texts: string };
}

export const manifestFile = 'manifest.json';

/**
 * What became of the code cache: used; refused by V8 (made with other V8 flags); or not handed to V8 at all
 * (made by another Node, for another source, damaged, or missing).
 */
export type CodeCacheUse = 'accepted' | 'rejected' | 'unusable';

export interface JsforceBundle {
  /** Runs an entry (`core` or an API name) and returns its module. */
  load(entry: string): unknown;
  codeCache: CodeCacheUse;
}

/** Where this process took jsforce from, for tests and benchmarks. */
export type BundleState = { from: 'bundle'; codeCache: CodeCacheUse } | { from: 'packages'; reason: string };

const opened = new Map<string, { bundle: JsforceBundle | null; state: BundleState }>();

/**
 * The bundle in `dir`, compiled and run once per process; null when it is missing or stale (then jsforce
 * loads from node_modules). Its entries run when first asked for.
 */
export function openJsforceBundle(dir: string = bundleDirectory): JsforceBundle | null {
  let entry = opened.get(dir);
  if (!entry) {
    entry = open(dir);
    opened.set(dir, entry);
    if (entry.state.from === 'packages') {
      process.emitWarning(`jsforce loads from node_modules, not from its prebuilt bundle (${entry.state.reason}); run npm run build`, {
        code: 'SWITCHYARD_JSFORCE_BUNDLE',
      });
    }
  }
  return entry.bundle;
}

/**
 * Makes this process load jsforce from node_modules even though there is a bundle (for tests and benchmarks
 * that compare the two). Must come before jsforce is first loaded.
 */
export function skipJsforceBundle(dir: string = bundleDirectory): void {
  opened.set(dir, { bundle: null, state: { from: 'packages', reason: 'skipped' } });
}

export function bundleState(dir: string = bundleDirectory): BundleState | undefined {
  return opened.get(dir)?.state;
}

function open(dir: string): { bundle: JsforceBundle | null; state: BundleState } {
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, manifestFile), 'utf8')) as BundleManifest;
  } catch {
    return { bundle: null, state: { from: 'packages', reason: `no bundle in ${dir}` } };
  }
  const changed = changedPackage(dir, manifest);
  if (changed) return { bundle: null, state: { from: 'packages', reason: changed } };
  installStandIns(dir, manifest);
  const source = readFileSync(join(dir, manifest.bundle), 'utf8');
  const cachedData = manifest.node === process.version && crc32(source) === manifest.crc32.bundle ? readCodeCache(join(dir, manifest.codeCache), manifest.crc32.codeCache) : undefined;
  const { script, load } = compile(join(dir, manifest.bundle), source, cachedData);
  const codeCache: CodeCacheUse = !cachedData ? 'unusable' : script.cachedDataRejected ? 'rejected' : 'accepted';
  return { bundle: { load, codeCache }, state: { from: 'bundle', codeCache } };
}

/**
 * Puts stand-ins for what the bundle leaves out in the module cache, before it runs: the deferred
 * dependencies, and the lazy Metadata API schema (read from the bundle's JSON on first use).
 */
function installStandIns(dir: string, manifest: Pick<BundleManifest, 'deferred' | 'schema'>): void {
  deferFiles(manifest.deferred.map((file) => join(dir, file)));
  let texts: SchemaTexts | undefined;
  installLazySchema(join(dir, manifest.schema.module), () => (texts ??= JSON.parse(readFileSync(join(dir, manifest.schema.texts), 'utf8')) as SchemaTexts));
}

/** Why the bundle no longer matches node_modules, or null when it does. */
function changedPackage(dir: string, manifest: BundleManifest): string | null {
  for (const { packageJson, version } of manifest.packages) {
    let now: string | undefined;
    try {
      now = (JSON.parse(readFileSync(join(dir, packageJson), 'utf8')) as { version?: string }).version;
    } catch {
      return `${packageJson} is gone`;
    }
    if (now !== version) return `${packageJson} is version ${now}, the bundle was built from ${version}`;
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

/**
 * Compiles the bundle as Node compiles a CommonJS module (the same wrapper, so the same source V8 checks the
 * code cache against) and runs it. Its relative requires resolve from its own file.
 */
function compile(file: string, source: string, cachedData?: Buffer): { script: Script; load: (entry: string) => unknown } {
  const script = new Script(Module.wrap(source), {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as Record<string, () => unknown> };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
  const load = (entry: string): unknown => {
    const run = module.exports[entry];
    if (typeof run !== 'function') throw new Error(`The jsforce bundle has no entry ${entry}`);
    return run();
  };
  return { script, load };
}

/**
 * Makes the code cache of the bundle in `dir` (at build time, in a fresh process): compiles it, runs every
 * entry, so the functions that run while jsforce loads are compiled too, and returns V8's cache data.
 */
export function makeCodeCache(dir: string, manifest: Omit<BundleManifest, 'codeCache' | 'node' | 'crc32'>): Buffer {
  installStandIns(dir, manifest);
  const file = join(dir, manifest.bundle);
  const { script, load } = compile(file, readFileSync(file, 'utf8'));
  for (const entry of manifest.entries) load(entry);
  return script.createCachedData();
}

// The lazy Metadata API schema.
//
// jsforce's Metadata API module carries the type schema of the whole Metadata API (`ApiSchemas`: ~840 types,
// 280 KB of object literals) and builds all of it when it loads. Every SOAP call hands it to jsforce's response
// casting, which reads only the types of that response (a deploy reads about ten). Building the objects is
// most of the cost, not parsing them: each type has its own shape, so V8 makes a new hidden class for each.
//
// So the bundle ships the schema as JSON text per type, and this stand-in for jsforce's schema module builds a
// type the first time jsforce reads it. The build checks that the JSON holds exactly what the module does.

/** The schema as the bundle ships it: each type's definition as JSON text, by type name. */
export type SchemaTexts = Record<string, string>;

/**
 * An object that reads like jsforce's `ApiSchemas`: property reads, `in`, and key listing answer from the
 * texts; each type is parsed on its first read and kept. jsforce never writes to it.
 */
export function lazySchemas(texts: () => SchemaTexts): Record<string, unknown> {
  const built: Record<string, unknown> = Object.create(null);
  const read = (key: string | symbol): unknown => {
    if (typeof key !== 'string') return undefined;
    if (key in built) return built[key];
    const all = texts();
    if (!Object.hasOwn(all, key)) return undefined;
    return (built[key] = JSON.parse(all[key]!));
  };
  return new Proxy(Object.create(null) as Record<string, unknown>, {
    get: (_target, key) => read(key),
    has: (_target, key) => typeof key === 'string' && Object.hasOwn(texts(), key),
    ownKeys: () => Object.keys(texts()),
    getOwnPropertyDescriptor(_target, key) {
      const value = read(key);
      return value === undefined ? undefined : { value, writable: false, enumerable: true, configurable: true };
    },
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
}

/**
 * Puts the stand-in in the CommonJS module cache under the file of jsforce's schema module, so jsforce's
 * `require('./metadata/schema')` gets it. Nothing is read until jsforce first looks up a type.
 */
function installLazySchema(schemaModuleFile: string, texts: () => SchemaTexts): void {
  const standIn = new Module(schemaModuleFile);
  standIn.filename = schemaModuleFile;
  standIn.loaded = true;
  // The module's exports as TypeScript compiles them: an ES module flag and the one named export.
  standIn.exports = Object.defineProperties({}, {
    __esModule: { value: true },
    ApiSchemas: { value: lazySchemas(texts), enumerable: true },
  });
  require.cache[schemaModuleFile] = standIn;
}
