// Builds the module bundles a task child loads (src/module-bundles/module-bundle.ts says what they are and why):
// jsforce's and node-vault's. Run by `npm run build` (and `npm test`) after tsc:
//   node dist/scripts/build-module-bundles.js              every bundle, each in its place in dist/
//   node dist/scripts/build-module-bundles.js <name> <dir>  one bundle, into <dir>; <name> may also be the path
//                                                          of a module exporting a `bundleSpec` (the tests' fixture)
//
// No bundler: each module keeps its own source, wrapped as Node wraps it, so it runs as it does from its file
// (commonjs-runner.ts says what little differs). The build starts from the spec's entries and follows every
// `require('…')` with a literal argument, resolving it with Node's own resolution from the requiring file. Left
// to Node at run time: a request it cannot resolve (an optional package, required inside a try), built-ins,
// the deferred dependencies, the data module, and any module that could not run from the bundle as from its
// file (not CommonJS, not a function body on its own, which also keeps every source inside its wrapper, or one
// that calls import(), which resolves from the calling file).
//
// It builds into a new directory next to the target and checks it there, in fresh processes started as the
// worker starts a task child: the code cache is made after running every entry; the bundle then has to open
// with its code cache accepted and load exactly the modules (the same files, in the CommonJS module cache)
// that loading the entries from node_modules loads. Only then does it replace the target, in one rename, so a
// child never sees half a bundle and concurrent builds do not mix.
import { fork } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { compileFunction } from 'node:vm';
import { crc32 } from 'node:zlib';
import { resolvableFiles } from '../deferred-modules.js';
import { bundleDirectory, bundleState, loadEntries, makeCodeCache, manifestFile, requireEntries, specFingerprint, type BundleManifest, type BundleSpec } from '../module-bundles/module-bundle.js';
import { nodeVaultBundle } from '../secrets/vault-unwrap.js';
import { childEnvironment } from '../workers/child-launcher.js';
import { jsforceBundle } from '../workers/operations/salesforce/jsforce-bundle.js';
import { invokedDirectly } from './invoked-directly.js';

/** Every bundle `npm run build` makes. */
export const bundleSpecs: readonly BundleSpec[] = [jsforceBundle, nodeVaultBundle];

const wrapperParameters = ['exports', 'require', 'module', '__filename', '__dirname'];

/**
 * Builds the spec's bundle and puts it in place of `target`; returns its manifest. `specRef` is how the fresh
 * processes that check it find the spec (findSpec).
 */
export async function buildModuleBundle(spec: BundleSpec, target: string = bundleDirectory(spec), specRef: string = spec.name): Promise<BundleManifest> {
  refuseToReplace(target);
  // A sibling of the target: paths relative to it are the target's, and the final rename stays on one disk.
  const work = mkdtempSync(join(dirname(target), `.${basename(target)}-`));
  chmodSync(work, 0o755); // mkdtemp makes it private; task children may run as another user than the build
  try {
    const manifest = await buildInto(spec, specRef, work, target);
    swapIn(work, target);
    return manifest;
  } catch (error) {
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Moves the built directory to the target, the old bundle out of the way first (a directory cannot be renamed
 * over a full one). Another build may do the same at the same moment: whichever renames last wins, both succeed.
 */
function swapIn(work: string, target: string): void {
  const old = (attempt: number) => `${work}.old${attempt}`;
  let attempt = 0;
  for (; ; attempt += 1) {
    try {
      renameSync(target, old(attempt));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error; // none there (yet, or any more)
    }
    try {
      renameSync(work, target);
      break;
    } catch (error) {
      // Another build put its bundle there in between: move that one away too, a few times at most.
      if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '') || attempt >= 10) {
        if (!existsSync(target) && existsSync(old(attempt))) renameSync(old(attempt), target); // leave the old one in place
        throw error;
      }
    }
  }
  for (let i = 0; i <= attempt; i += 1) rmSync(old(i), { recursive: true, force: true });
}

/** A typo in the target must not delete something else: only a module bundle (or nothing) is replaced. */
function refuseToReplace(target: string): void {
  if (!existsSync(target) || readdirSync(target).length === 0) return;
  let manifest: Partial<BundleManifest> | undefined;
  try {
    manifest = JSON.parse(readFileSync(join(target, manifestFile), 'utf8')) as Partial<BundleManifest>;
  } catch {
    // not one
  }
  if (typeof manifest?.format !== 'number' || typeof manifest.fingerprint !== 'string' || typeof manifest.bundle !== 'string') {
    throw new Error(`${target} is not a module bundle (it has no bundle manifest); not replacing it`);
  }
}

/** Builds the bundle in `dir`, for use from `finalDir` (which it is renamed to). */
async function buildInto(spec: BundleSpec, specRef: string, dir: string, finalDir: string): Promise<BundleManifest> {
  const resolveFromLoader = createRequire(spec.from).resolve;
  const entries = Object.fromEntries(Object.entries(spec.entries).map(([name, request]) => [name, resolveFromLoader(request)]));
  const deferred = resolvableFiles(spec.deferred); // left out: they load as stand-ins
  const dataFile = spec.lazyData && resolveFromLoader(spec.lazyData.request);
  const leftOut = new Set([...deferred, ...(dataFile ? [dataFile] : [])]);
  const modules = collect(Object.values(entries), leftOut);
  const relativeTo = (file: string) => relative(dir, file);

  const bundle = 'bundle.cjs';
  const bundleBytes = Buffer.from(bundleSource(modules, relativeTo));
  writeFileSync(join(dir, bundle), bundleBytes);
  let lazyData: BundleManifest['lazyData'];
  let dataBytes: Buffer | undefined;
  if (spec.lazyData && dataFile) {
    const { texts, esModule } = dataAsTexts(dataFile, spec.lazyData.exportName);
    lazyData = { module: relativeTo(dataFile), exportName: spec.lazyData.exportName, esModule, texts: 'data.json' };
    dataBytes = Buffer.from(JSON.stringify(texts));
    writeFileSync(join(dir, lazyData.texts), dataBytes);
  }
  const codeCache = `${bundle}.cache`;
  const manifest: BundleManifest = {
    format: 3,
    node: process.version,
    fingerprint: specFingerprint(spec),
    bundle,
    codeCache,
    crc32: { bundle: crc32(bundleBytes), codeCache: 0, ...(dataBytes ? { data: crc32(dataBytes) } : {}) },
    entries: Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, relativeTo(file)])),
    deferred: deferred.map(relativeTo),
    ...(lazyData ? { lazyData } : {}),
    files: [...modules.keys(), ...leftOut, ...installRecord(Object.values(entries)[0]!)].map((file) => {
      const { size, mtimeMs } = statSync(file);
      return { file: relativeTo(file), size, mtimeMs };
    }),
  };
  await inTaskChild('code-cache', { spec: specRef, dir, finalDir, manifest, file: join(dir, codeCache) });
  manifest.crc32.codeCache = crc32(readFileSync(join(dir, codeCache)));
  writeFileSync(join(dir, manifestFile), `${JSON.stringify(manifest, null, 2)}\n`);
  await checkAgainstNode(spec, specRef, dir, modules);
  return manifest;
}

/**
 * npm's record of what node_modules holds (node_modules/.package-lock.json), which every npm install, ci,
 * update and prune rewrites: a bundle is stale after any of them, even one that only added a package where
 * Node would now look first. None when the packages were not installed by npm.
 */
function installRecord(entryFile: string): string[] {
  for (let dir = dirname(entryFile); dir !== dirname(dir); dir = dirname(dir)) {
    if (basename(dir) !== 'node_modules') continue;
    const file = join(dir, '.package-lock.json');
    return existsSync(file) ? [file] : [];
  }
  return [];
}


interface Collected {
  source: string;
  /** Request → the file Node resolves it to from this module. */
  requests: Map<string, string>;
}

/**
 * The modules reachable from the entries by literal requires that can run from the bundle exactly as from
 * their files, without the files left out. A module that cannot (not CommonJS source, not a function body on
 * its own, or one that uses import(), which would resolve from the bundle's file) is left to Node: no module's
 * table points at it, so requiring it goes to Node, and what it requires is not followed.
 */
function collect(entryFiles: string[], leftOut: Set<string>): Map<string, Collected> {
  const modules = new Map<string, Collected>();
  const leftToNode = new Set<string>();
  const queue = [...entryFiles];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (modules.has(file) || leftToNode.has(file)) continue;
    const source = bundleableSource(file);
    if (source === null) {
      if (entryFiles.includes(file)) throw new Error(`The entry ${file} cannot run from a bundle`);
      leftToNode.add(file);
      continue;
    }
    const requests = new Map<string, string>();
    for (const [, , request] of source.matchAll(/\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g)) {
      if (isBuiltin(request!)) continue;
      let target: string;
      try {
        target = createRequire(file).resolve(request!);
      } catch {
        continue; // Node fails here too (an optional package, in a try), or finds what was installed since
      }
      requests.set(request!, target);
      if (!leftOut.has(target)) queue.push(target);
    }
    modules.set(file, { source, requests });
  }
  // Only requests answered from the bundle keep their entry: the modules in it and the files it leaves out.
  for (const { requests } of modules.values()) {
    for (const [request, target] of requests) if (!modules.has(target) && !leftOut.has(target)) requests.delete(request);
  }
  return modules;
}

/** The module's source if it can run from the bundle as it runs from its file, or null. */
function bundleableSource(file: string): string | null {
  if (!isCommonJsFile(file)) return null; // JSON, an ES module, a native addon
  const source = readFileSync(file, 'utf8').replace(/^#!.*/, ''); // Node ignores a hashbang line too
  if (/\bimport\s*\(/.test(source)) return null;
  try {
    compileFunction(source, wrapperParameters, { filename: file });
  } catch {
    return null; // e.g. ES module syntax in a .js file Node would load as such
  }
  return source;
}

/** Whether Node treats this file as CommonJS source: .cjs, or .js outside a package of "type": "module". */
function isCommonJsFile(file: string): boolean {
  const extension = extname(file);
  if (extension === '.cjs') return true;
  if (extension !== '.js') return false;
  // The package scope, as Node looks it up: the nearest package.json, not above the package's node_modules.
  for (let dir = dirname(file); dir !== dirname(dir) && basename(dir) !== 'node_modules'; dir = dirname(dir)) {
    let type: unknown;
    try {
      type = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type;
    } catch {
      continue;
    }
    return type !== 'module';
  }
  return true;
}

/** The bundle: an object of modules, each as Node wraps it, with where its requests resolved to. */
function bundleSource(modules: Map<string, Collected>, relativeTo: (file: string) => string): string {
  const parts = ['// Modules for Switchyard task children, written by src/scripts/build-module-bundles.ts: do not edit.\nmodule.exports = {\n'];
  for (const [file, { source, requests }] of modules) {
    const resolved = Object.fromEntries([...requests].map(([request, target]) => [request, relativeTo(target)]));
    parts.push(`${JSON.stringify(relativeTo(file))}: [function (${wrapperParameters.join(', ')}) {${source}\n}, ${JSON.stringify(resolved)}],\n`);
  }
  parts.push('};\n');
  return parts.join('');
}

/**
 * The data module's one export as JSON text per key (jsforce's Metadata API schema: one text per type). The
 * module must export that and nothing else, and each text must read back as exactly its value.
 */
export function dataAsTexts(file: string, exportName: string): { texts: Record<string, string>; esModule: boolean } {
  const exported = createRequire(file)(file) as Record<string, unknown>;
  const names = Object.keys(exported);
  if (names.length !== 1 || names[0] !== exportName) throw new Error(`${file} exports ${JSON.stringify(names)}, not just ${exportName}`);
  const texts: Record<string, string> = {};
  for (const [key, value] of Object.entries(exported[exportName] as Record<string, unknown>)) {
    const text = JSON.stringify(value);
    if (!isDeepStrictEqual(JSON.parse(text), value)) throw new Error(`${exportName}.${key} in ${file} is not plain JSON data`);
    texts[key] = text;
  }
  return { texts, esModule: exported.__esModule === true };
}

/** The bundle opens with its code cache and loads the very modules Node loads from node_modules. */
async function checkAgainstNode(spec: BundleSpec, specRef: string, dir: string, modules: Map<string, Collected>): Promise<void> {
  // Resolved here with this process's NODE_OPTIONS and NODE_PATH: resolved again where children resolve.
  const table = [...modules].flatMap(([file, { requests }]) => [...requests].map(([request, target]) => [file, request, target]));
  const differing = await inTaskChild<string[][]>('resolve', { table });
  if (differing.length > 0) throw new Error(`A task child resolves requests differently from the build: ${JSON.stringify(differing)}`);
  const fromBundle = await inTaskChild<Loaded>('load', { spec: specRef, dir });
  const fromPackages = await inTaskChild<Loaded>('load', { spec: specRef });
  if (!isDeepStrictEqual(fromBundle.state, { from: 'bundle', codeCache: 'accepted' })) {
    throw new Error(`A task child did not use the new ${spec.name} bundle with its code cache: ${JSON.stringify(fromBundle.state)}`);
  }
  const only = (a: string[], b: string[]) => a.filter((file) => !b.includes(file));
  const extra = only(fromBundle.modules, fromPackages.modules);
  const missing = only(fromPackages.modules, fromBundle.modules);
  if (extra.length > 0 || missing.length > 0) {
    throw new Error(`The ${spec.name} bundle loads other modules than node_modules does: more ${JSON.stringify(extra)}, fewer ${JSON.stringify(missing)}`);
  }
}

interface Loaded {
  state: unknown;
  /** The CommonJS module cache's files after loading every API. */
  modules: string[];
}

type Job =
  | { job: 'code-cache'; spec: string; dir: string; finalDir: string; manifest: BundleManifest; file: string }
  | { job: 'load'; spec: string; dir?: string }
  | { job: 'resolve'; table: string[][] };

/** Runs a job of this script in a fresh process started as the worker starts a task child (environment, no flags). */
function inTaskChild<T = void>(job: Job['job'], args: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [], { env: childEnvironment(), execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answer: { ok: true; value: T } | { ok: false; error: string } | undefined;
    child.on('message', (message: typeof answer) => (answer = message));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (answer?.ok) resolve(answer.value);
      else reject(new Error(`${job} failed: ${answer?.error ?? `exit code ${code}`}`));
    });
    child.send({ job, ...args });
  });
}

async function runJob(message: Job): Promise<unknown> {
  if (message.job === 'code-cache') {
    writeFileSync(message.file, makeCodeCache(await findSpec(message.spec), message.dir, message.manifest, message.finalDir));
    return undefined;
  }
  if (message.job === 'resolve') {
    return message.table.filter(([file, request, target]) => {
      try {
        return createRequire(file!).resolve(request!) !== target;
      } catch {
        return true;
      }
    });
  }
  const spec = await findSpec(message.spec);
  const names = Object.keys(spec.entries);
  // From the bundle, or (a bundle that does not open) from node_modules: the state says which, and the check refuses the latter.
  if (message.dir) loadEntries(spec, names, message.dir);
  else requireEntries(spec, names);
  return { state: message.dir ? bundleState(spec, message.dir) : undefined, modules: Object.keys(createRequire(import.meta.url).cache).sort() } satisfies Loaded;
}

/** A bundle `npm run build` makes, by name, or the `bundleSpec` a module exports, by the module's path. */
async function findSpec(ref: string): Promise<BundleSpec> {
  const spec = bundleSpecs.find((s) => s.name === ref);
  if (spec) return spec;
  if (!ref.includes('/')) throw new Error(`No module bundle is called ${ref}; there are ${bundleSpecs.map((s) => s.name).join(', ')}`);
  const { bundleSpec } = (await import(pathToFileURL(resolve(ref)).href)) as { bundleSpec?: BundleSpec };
  if (!bundleSpec) throw new Error(`${ref} exports no bundleSpec`);
  return bundleSpec;
}

if (invokedDirectly(import.meta.url)) {
  if (process.send) {
    process.once('message', async (message: Job) => {
      let reply: object;
      try {
        reply = { ok: true, value: await runJob(message) };
      } catch (error) {
        reply = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
      }
      process.send!(reply, () => process.disconnect());
    });
  } else {
    const [ref, dir] = process.argv.slice(2);
    for (const spec of ref ? [await findSpec(ref)] : bundleSpecs) {
      const manifest = await buildModuleBundle(spec, dir ?? bundleDirectory(spec), ref ?? spec.name);
      process.stdout.write(`${spec.name} bundle: ${Object.keys(manifest.entries).join(', ')}; ${manifest.files.length} files; code cache for Node ${manifest.node}\n`);
    }
  }
}
