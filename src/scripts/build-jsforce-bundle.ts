// Builds the jsforce bundle a task child loads (src/workers/operations/salesforce/jsforce-bundle.ts says what
// it is and why). Run by `npm run build` after tsc:  node dist/scripts/build-jsforce-bundle.js [dir]
//
// Build-time only: it needs rolldown, a devDependency, and is not run in production images (the image builds
// the bundle in its build stage). Every step checks what it makes:
//   - rolldown bundles what Node would load, because every request is resolved by Node's own resolution from
//     the requiring file; afterwards a fresh process loads jsforce from node_modules and each module it loads
//     must be in the bundle (or be one of the files left out);
//   - each type of the schema's JSON must parse back to exactly the module's value;
//   - the code cache is made in a fresh process that runs every entry of the bundle, so the bundle has loaded
//     once before anything uses it.
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { crc32 } from 'node:zlib';
import { resolveDeferred } from '../deferred-modules.js';
import { bundleDirectory, makeCodeCache, manifestFile, type BundleManifest } from '../workers/operations/salesforce/jsforce-bundle.js';
import { apiModules, coreModule, deferredDependencies, loadJsforceFromPackages, schemaModule, type JsforceApi } from '../workers/operations/salesforce/load-jsforce.js';

const loaderFile = fileURLToPath(new URL('../workers/operations/salesforce/load-jsforce.js', import.meta.url));
const requireFromLoader = createRequire(loaderFile);
const bundleFile = 'jsforce.cjs';
const entryId = '\0switchyard-jsforce-entry';

type Recipe = Omit<BundleManifest, 'codeCache' | 'node' | 'crc32'>;

/** Builds the bundle into `dir` (replacing what is there) and returns its manifest. */
export async function buildJsforceBundle(dir: string = bundleDirectory): Promise<BundleManifest> {
  const entries: Record<string, string> = { core: requireFromLoader.resolve(coreModule) };
  for (const [api, request] of Object.entries(apiModules)) entries[api] = requireFromLoader.resolve(request);
  const schemaFile = requireFromLoader.resolve(schemaModule);
  const deferred = deferredFiles();
  const leftOut = new Set([schemaFile, ...deferred]);

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bundled = await bundle(join(dir, bundleFile), entries, leftOut);
  await checkAgainstNode(bundled, leftOut);
  const schemaTexts = 'metadata-schema.json';
  writeFileSync(join(dir, schemaTexts), JSON.stringify(schemaAsTexts(schemaFile)));

  const recipe: Recipe = {
    format: 1,
    bundle: bundleFile,
    entries: Object.keys(entries),
    packages: packagesOf([...bundled, ...leftOut]).map(({ file, version }) => ({ packageJson: relative(dir, file), version })),
    deferred: deferred.map((file) => relative(dir, file)),
    schema: { module: relative(dir, schemaFile), texts: schemaTexts },
  };
  const codeCache = `${bundleFile}.cache`;
  await inFreshProcess('code-cache', { dir, recipe, file: join(dir, codeCache) });
  const crc32s = { bundle: crc32(readFileSync(join(dir, bundleFile), 'utf8')), codeCache: crc32(readFileSync(join(dir, codeCache))) };
  const manifest: BundleManifest = { ...recipe, node: process.version, codeCache, crc32: crc32s };
  // Last, and whole or not at all: the manifest is what makes the directory a bundle.
  writeFileSync(join(dir, `${manifestFile}.tmp`), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(join(dir, `${manifestFile}.tmp`), join(dir, manifestFile));
  return manifest;
}

/** The files of jsforce's deferred dependencies, which stay out of the bundle (they load as stand-ins). */
function deferredFiles(): string[] {
  return deferredDependencies.flatMap((dependency) => {
    try {
      return [resolveDeferred(dependency)];
    } catch {
      return []; // no longer required from where it is listed: nothing to leave out
    }
  });
}

/** Bundles the entries into one CommonJS file; returns the files it holds. */
async function bundle(file: string, entries: Record<string, string>, leftOut: Set<string>): Promise<string[]> {
  const { rolldown } = await import('rolldown');
  const build = await rolldown({
    input: entryId,
    platform: 'node',
    logLevel: 'warn',
    plugins: [
      {
        name: 'switchyard-node-resolution',
        // Node's resolution, from the requiring file: the bundle holds the very files Node would load.
        resolveId(source, importer) {
          if (source === entryId) return entryId;
          if (Module.isBuiltin(source)) return { id: source, external: true };
          if (!importer) return null;
          let resolved: string;
          try {
            resolved = createRequire(importer === entryId ? loaderFile : importer).resolve(source);
          } catch {
            return { id: source, external: true }; // Node fails here too (an optional package in a try), at run time
          }
          if (!leftOut.has(resolved)) return { id: resolved };
          // A left-out file is required by its path relative to the bundle: the same file, so the stand-in.
          // (A relative id is written out as it is; rolldown would make an absolute one relative to the cwd.)
          const path = relative(dirname(file), resolved);
          return { id: path.startsWith('.') ? path : `./${path}`, external: true };
        },
        load(id) {
          if (id !== entryId) return null;
          return Object.entries(entries)
            .map(([name, target]) => `exports.${name} = () => require(${JSON.stringify(target)});`)
            .join('\n');
        },
      },
    ],
  });
  try {
    const { output } = await build.generate({ format: 'cjs', file });
    const [chunk, ...rest] = output;
    if (!chunk || chunk.type !== 'chunk' || rest.length > 0) throw new Error('rolldown made more than one file of jsforce');
    writeFileSync(file, chunk.code);
    return chunk.moduleIds.filter((id) => id !== entryId);
  } finally {
    await build.close();
  }
}

/** Loads jsforce from node_modules in a fresh process; every module it loads must be bundled or left out. */
async function checkAgainstNode(bundled: string[], leftOut: Set<string>): Promise<void> {
  const loaded = await inFreshProcess<string[]>('loaded-modules', {});
  const inBundle = new Set(bundled);
  const missing = loaded.filter((file) => !inBundle.has(file) && !leftOut.has(file));
  if (missing.length > 0) throw new Error(`The jsforce bundle lacks modules Node loads: ${missing.join(', ')}`);
}

/** Each type of jsforce's Metadata API schema as JSON text; each must read back as exactly the type. */
function schemaAsTexts(schemaFile: string): Record<string, string> {
  const { ApiSchemas } = requireFromLoader(schemaFile) as { ApiSchemas: Record<string, unknown> };
  const texts: Record<string, string> = {};
  for (const [type, definition] of Object.entries(ApiSchemas)) {
    const text = JSON.stringify(definition);
    if (!isDeepStrictEqual(JSON.parse(text), definition)) throw new Error(`jsforce's schema type ${type} is not plain JSON data`);
    texts[type] = text;
  }
  return texts;
}

/** The package.json (nearest with a version) of each file's package, once each. */
function packagesOf(files: string[]): Array<{ file: string; version: string }> {
  const packages = new Map<string, string>();
  for (const file of files) {
    for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
      const packageJson = join(dir, 'package.json');
      let version: unknown;
      try {
        version = (JSON.parse(readFileSync(packageJson, 'utf8')) as { version?: unknown }).version;
      } catch {
        continue;
      }
      if (typeof version !== 'string') continue; // e.g. a dist/cjs/package.json that only sets "type"
      packages.set(packageJson, version);
      break;
    }
  }
  return [...packages].map(([file, version]) => ({ file, version }));
}

type Job = { job: 'loaded-modules' } | { job: 'code-cache'; dir: string; recipe: Recipe; file: string };

/** Runs a job of this script in a fresh Node process (its module cache and V8 as a task child's) over IPC. */
function inFreshProcess<T = void>(job: Job['job'], args: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
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

function runJob(message: Job): unknown {
  if (message.job === 'loaded-modules') {
    loadJsforceFromPackages(Object.keys(apiModules) as JsforceApi[]);
    return Object.keys(createRequire(import.meta.url).cache);
  }
  writeFileSync(message.file, makeCodeCache(message.dir, message.recipe));
  return undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.send) {
    process.once('message', (message: Job) => {
      let reply: object;
      try {
        reply = { ok: true, value: runJob(message) };
      } catch (error) {
        reply = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
      }
      process.send!(reply, () => process.disconnect());
    });
  } else {
    const manifest = await buildJsforceBundle(process.argv[2] ?? bundleDirectory);
    process.stdout.write(`jsforce bundle: ${manifest.packages.length} packages, code cache for ${manifest.node}\n`);
  }
}
