// Module bundles (src/module-bundles/module-bundle.ts) and their build (src/scripts/build-module-bundles.ts,
// which `npm run build` and `npm test` run), through jsforce's, the one with a data module: built here into
// directories of the test's own, loaded in fresh processes (test/support/jsforce-probe.mjs) as a task child
// loads jsforce, against the Salesforce simulator. load-jsforce.test.ts runs Switchyard's operations on the
// bundle in dist/, vault-store.test.ts redeems a Vault grant with node-vault's.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import Module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runInThisContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDeferred } from '../src/deferred-modules.js';
import { bundlePaths } from '../src/module-bundles/commonjs-runner.js';
import { lazyData, type DataTexts } from '../src/module-bundles/lazy-data.js';
import type { BundledModules, BundleManifest } from '../src/module-bundles/module-bundle.js';
import { deferredDependencies, jsforceBundle } from '../src/workers/operations/salesforce/jsforce-bundle.js';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { runProbe } from './support/probe.js';
import { samplePackage } from './support/salesforce-package.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const builder = join(root, 'dist/scripts/build-module-bundles.js');
const schemaModule = jsforceBundle.lazyData!.request;
const probe = fileURLToPath(new URL('./support/jsforce-probe.mjs', import.meta.url));
const require = createRequire(import.meta.url);
const every = <T>(state: T) => Object.fromEntries(deferredDependencies.map((d) => [d.request, state]));
const build = (dir: string) => promisify(execFile)(process.execPath, [builder, 'jsforce', dir]);

const clientId = `3MVG9bundle.${randomBytes(8).toString('hex')}`;
const clientSecret = `bundle-secret-${randomBytes(8).toString('hex')}`;
const refreshToken = `5Aep861bundle${randomBytes(16).toString('hex')}`;

let sim: SalesforceSim;
let work: string;
let dir: string;
let manifest: BundleManifest;

beforeAll(async () => {
  sim = await startSalesforceSim({ org: { Name: 'Bundle Org', InstanceName: 'NA1' } });
  sim.addRefreshToken(refreshToken, { clientId, clientSecret });
  work = await mkdtemp(join(tmpdir(), 'switchyard-module-bundle-'));
  dir = join(work, 'bundle');
  await build(dir);
  manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
}, 60_000);

afterAll(async () => {
  await sim?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A copy of the built bundle next to it (so its relative paths still hold), changed by `change`. */
async function variant(name: string, change: (manifest: BundleManifest, copy: string) => Promise<void> | void): Promise<string> {
  const copy = join(work, name);
  await cp(dir, copy, { recursive: true });
  const changed = structuredClone(manifest);
  await change(changed, copy);
  await writeFile(join(copy, 'manifest.json'), JSON.stringify(changed));
  return copy;
}

/** What the built bundle's script defines: each module's wrapper function and resolved requests, by relative path. */
async function bundledModules(): Promise<BundledModules> {
  const source = await readFile(join(dir, manifest.bundle), 'utf8');
  const bundle = { exports: {} as BundledModules };
  (runInThisContext(Module.wrap(source)) as (...args: unknown[]) => void)(bundle.exports, require, bundle);
  return bundle.exports;
}

interface Opened {
  state: Record<string, unknown>;
  warnings: Array<{ code: string; message: string }>;
  schemaIsStandIn: boolean | null;
  metadataDeploy: string;
}

/** Loads jsforce in a fresh process with the bundle in `bundleDir`; it must work either way. */
async function open(bundleDir: string, execArgv: string[] = []): Promise<Opened> {
  const answer = await runProbe<Opened>(probe, { job: 'open-bundle', dir: bundleDir }, execArgv);
  expect(answer.error).toBeUndefined();
  expect(answer.metadataDeploy).toBe('function'); // jsforce loaded, with the Metadata API registered on Connection
  return answer;
}

const fromPackages = (reason: string | RegExp) => ({
  state: { from: 'packages', reason: typeof reason === 'string' ? expect.stringContaining(reason) : expect.stringMatching(reason) },
  warnings: [{ code: 'SWITCHYARD_MODULE_BUNDLE', message: expect.stringMatching(/^jsforce loads from node_modules.*run npm run build$/) }],
  schemaIsStandIn: false, // jsforce's own schema module, not the bundle's stand-in
});

describe('building a module bundle (jsforce\'s)', () => {
  it('records its entries, what it leaves out and every file it was built from, relative to itself', async () => {
    expect(manifest).toMatchObject({ format: 3, node: process.version, bundle: 'bundle.cjs', codeCache: 'bundle.cjs.cache' });
    expect(manifest.lazyData).toMatchObject({ exportName: 'ApiSchemas', esModule: true, texts: 'data.json' });
    expect(Object.fromEntries(Object.entries(manifest.entries).map(([name, file]) => [name, resolve(dir, file)]))).toEqual({
      core: require.resolve('jsforce/lib/core.js'),
      metadata: require.resolve('jsforce/lib/api/metadata.js'),
    });
    expect(manifest.deferred.map((file) => resolve(dir, file)).sort()).toEqual(deferredDependencies.map(resolveDeferred).sort());
    expect(resolve(dir, manifest.lazyData!.module)).toBe(require.resolve(schemaModule));
    // Every module in it, every file left out, and npm's record of node_modules, with their size and time.
    const installRecord = join(root, 'node_modules/.package-lock.json');
    const expected = [...Object.keys(await bundledModules()), ...manifest.deferred, manifest.lazyData!.module, relative(dir, installRecord)];
    expect(manifest.files.map((f) => f.file).sort()).toEqual(expected.sort());
    for (const { file, size, mtimeMs } of manifest.files) {
      expect(file).toMatch(/^\.\.\//);
      expect(await stat(resolve(dir, file))).toMatchObject({ size, mtimeMs });
    }
  });

  it("holds each module's own source, unchanged, as Node wraps it, with its requests resolved as Node resolves them", async () => {
    const bundled = await bundledModules();
    const modules = Object.entries(bundled);
    expect(modules.length).toBeGreaterThan(40);
    for (const [relativeFile, [factory, requests]] of modules) {
      const file = resolve(dir, relativeFile);
      expect(factory.toString()).toBe(`function (exports, require, module, __filename, __dirname) {${await readFile(file, 'utf8')}\n}`);
      for (const [request, target] of Object.entries(requests)) expect(resolve(dir, target)).toBe(createRequire(file).resolve(request));
    }
    // The files left out are not in it; they are required (by the modules that require them) from node_modules.
    for (const file of [...manifest.deferred, manifest.lazyData!.module]) expect(bundled[file]).toBeUndefined();
  });

  it("ships jsforce's Metadata API schema as JSON that reads back as the very same schema, one type at a time", async () => {
    const texts = JSON.parse(await readFile(join(dir, manifest.lazyData!.texts), 'utf8')) as DataTexts;
    const read = new Set<string | symbol>();
    const watched = new Proxy(texts, { get: (target, key) => (read.add(key), Reflect.get(target, key)) });
    const schemas = lazyData(() => watched);
    expect(schemas.DeployResult).toBe(schemas.DeployResult); // built once, then kept
    expect(read).toEqual(new Set(['DeployResult'])); // and nothing else was built
    expect('RetrieveResult' in schemas).toBe(true);
    expect('NoSuchType' in schemas).toBe(false);
    expect(schemas.NoSuchType).toBeUndefined();
    const { ApiSchemas } = require(schemaModule) as { ApiSchemas: Record<string, unknown> };
    expect(Object.keys(schemas)).toEqual(Object.keys(ApiSchemas));
    expect(read).toEqual(new Set(['DeployResult'])); // listing the types builds none
    for (const type of Object.keys(ApiSchemas)) expect(schemas[type]).toEqual(ApiSchemas[type]);
    expect(() => Object.assign(schemas, { DeployResult: {} })).toThrow(TypeError); // read-only, as jsforce only reads it
  });

  it('refuses to replace a directory that is not a bundle', async () => {
    const other = join(work, 'not-a-bundle');
    await mkdir(other);
    await writeFile(join(other, 'keep.txt'), 'mine');
    await expect(build(other)).rejects.toThrow(/is not a module bundle/);
    expect(await readdir(other)).toEqual(['keep.txt']);
  });

  it('replaces a bundle whole: two builds at once leave one working bundle and nothing else', { timeout: 60_000 }, async () => {
    const target = join(work, 'rebuilt');
    await build(target);
    await Promise.all([build(target), build(target)]);
    expect((await readdir(work)).filter((name) => name.startsWith('.rebuilt'))).toEqual([]); // no work directories left
    expect((await open(target)).state).toEqual({ from: 'bundle', codeCache: 'accepted' });
  });
});

describe('a module run from a bundle', () => {
  const specModule = fileURLToPath(new URL('./fixtures/module-bundle/spec.mjs', import.meta.url));
  const bundleProbe = fileURLToPath(new URL('./support/bundle-probe.mjs', import.meta.url));

  it('sees exactly what it sees when Node loads it from its file', { timeout: 30_000 }, async () => {
    const fixture = join(work, 'fixture');
    await promisify(execFile)(process.execPath, [builder, specModule, fixture]);
    const fromFiles = await runProbe<Record<string, unknown>>(bundleProbe, { job: 'load', specModule, entry: 'main' });
    const fromBundle = await runProbe<Record<string, unknown>>(bundleProbe, { job: 'load', specModule, entry: 'main', dir: fixture });
    expect(fromFiles.error).toBeUndefined();
    expect(fromBundle.error).toBeUndefined();
    expect(fromBundle.state).toEqual({ from: 'bundle', codeCache: 'accepted' });
    expect({ ...fromBundle, state: null, stackFile: null }).toEqual({ ...fromFiles, stackFile: null });
    // And what that is, so that both cannot be wrong alike.
    expect(fromFiles).toMatchObject({ dynamic: 'imported', plainRequireIsSame: true });
    // Stack traces name the bundle the code ran from (not the work directory the build made its cache in).
    expect(fromFiles.stackFile).toBe(join(dirname(specModule), 'lib', 'index.js'));
    expect(fromBundle.stackFile).toBe(join(fixture, 'bundle.cjs'));
    expect(fromFiles.report).toEqual({
      strict: true,
      thisIsExports: true,
      sameFileSameModule: true,
      moduleRequire: true,
      json: { answer: 42, list: ['x', 'y'] },
      cycle: { bSaw: { before: 'a-before', after: 'not yet' } },
      sloppyThisIsGlobal: true,
      threw: 'throws.js fails while loading',
      threwCached: false,
      children: ['a.js', 'cycle-a.js', 'data.json', 'dynamic.js', 'sloppy.js', 'table.js'],
      parent: 'spec.mjs',
      loaded: { a: true },
      filename: 'index.js',
      resolved: 'a.js',
      resolvePaths: true,
      resolveWithPaths: 'a.js',
      cacheIsNodes: true,
      extensions: true,
      modulePaths: true,
      tableBeta: { list: [1, 2], flag: true, nested: { s: 'x' } },
      tableKeys: ['alpha', 'beta'],
      tableHas: true,
    });
  });
});

describe('paths relative to a bundle', () => {
  // bundlePaths is what a child opening a bundle uses instead of path.join for its ~120 paths (the build writes them
  // with path.relative); a path it got wrong would be a module under a second name, or a stale file unnoticed.
  it('are exactly the paths path.join gives, whatever their shape', () => {
    const shapes = ['../../../node_modules/jsforce/lib/core.js', 'bundle.cjs', '../x.js', '../../../../../../../../a/b.js', 'a/../b.js', './a.js', '../a//b.js', '/abs/a.js', '..', '../..', 'a/.', ''];
    for (const base of ['/srv/app/dist/module-bundles/jsforce/', '/srv/app/dist/module-bundles/jsforce', '/b', '/']) {
      const inBundle = bundlePaths(base);
      for (const shape of shapes) expect([base, shape, inBundle(shape)]).toEqual([base, shape, join(base, shape)]);
      // Asked again (the joins it keeps per number of leading '..'s), still the same.
      expect(inBundle(shapes[0]!)).toBe(join(base, shapes[0]!));
    }
  });
});

describe('a task child loading jsforce with its bundle', () => {
  it('deploys with it, with the code cache, the schema stand-in and none of the deferred dependencies loaded', { timeout: 30_000 }, async () => {
    const credentials = { instanceUrl: sim.instanceUrl, refreshToken, clientId, clientSecret };
    const zip = samplePackage(['Foo']).toString('base64');
    const answer = await runProbe<{ state: unknown; states: unknown; schemaIsStandIn: boolean; result: Record<string, unknown> }>(probe, { job: 'bundle-deploy', dir, credentials, zip });
    expect(answer.error).toBeUndefined();
    expect(answer.state).toEqual({ from: 'bundle', codeCache: 'accepted' });
    // jsforce cast the SOAP answer with the lazy schema: numbers and booleans, not the XML's strings.
    expect(answer.result).toMatchObject({ done: true, success: true, checkOnly: true, numberComponentsDeployed: 1, numberComponentErrors: 0 });
    expect(answer.schemaIsStandIn).toBe(true);
    expect(answer.states).toEqual(every('deferred'));
  });

  it('loads from node_modules, with a warning, when a file the bundle was built from has changed', async () => {
    const file = manifest.files.find((f) => f.file.endsWith('jsforce/lib/connection.js'))!;
    const stale = await variant('stale', (m) => {
      m.files.find((f) => f.file === file.file)!.mtimeMs -= 1000; // as if connection.js had been rewritten since
    });
    expect(await open(stale)).toMatchObject(fromPackages(/jsforce\/lib\/connection\.js changed since the bundle was built/));
  });

  it('loads from node_modules, with a warning, when there is no bundle, or one this Switchyard cannot use', async () => {
    expect(await open(join(work, 'never-built'))).toMatchObject(fromPackages('no bundle in'));
    const older = await variant('older-format', (m) => {
      (m as { format: number }).format = 1;
    });
    expect(await open(older)).toMatchObject(fromPackages('built by another version of Switchyard'));
    const otherLists = await variant('other-lists', (m) => {
      m.fingerprint = '{}';
    });
    expect(await open(otherLists)).toMatchObject(fromPackages('built for another list of modules'));
  });

  it('loads from node_modules, with a warning, when the bundle or its schema is damaged or missing', async () => {
    const damaged = await variant('damaged-source', async (_m, copy) => {
      const source = await readFile(join(copy, 'bundle.cjs'), 'utf8');
      await writeFile(join(copy, 'bundle.cjs'), source.replace('"use strict"', "'use strict'")); // same length
    });
    expect(await open(damaged)).toMatchObject(fromPackages(/bundle\.cjs is damaged/));
    const schema = await variant('damaged-schema', async (_m, copy) => {
      await writeFile(join(copy, 'data.json'), '{}');
    });
    expect(await open(schema)).toMatchObject(fromPackages(/data\.json is damaged/));
    const missing = await variant('missing-source', async (_m, copy) => {
      await rm(join(copy, 'bundle.cjs'));
    });
    expect(await open(missing)).toMatchObject(fromPackages(/failed to open: ENOENT/));
  });

  it('still uses the bundle when its code cache is from another Node, damaged, or refused by V8', async () => {
    const otherNode = await variant('other-node', (m) => {
      m.node = 'v0.0.0';
    });
    expect(await open(otherNode)).toMatchObject({ state: { from: 'bundle', codeCache: 'unusable' }, warnings: [], schemaIsStandIn: true });

    // V8 does not check a code cache's own integrity (a damaged one crashed the process): the manifest's CRC does.
    const damaged = await variant('damaged-cache', async (_m, copy) => {
      const cache = await readFile(join(copy, 'bundle.cjs.cache'));
      cache.fill(0x5a, 64, 256);
      await writeFile(join(copy, 'bundle.cjs.cache'), cache);
    });
    expect(await open(damaged)).toMatchObject({ state: { from: 'bundle', codeCache: 'unusable' }, warnings: [] });

    // Other V8 flags than the build's (task children get none): V8 refuses the cache and compiles the bundle.
    expect(await open(dir, ['--no-opt'])).toMatchObject({ state: { from: 'bundle', codeCache: 'rejected' }, warnings: [] });
  });
});
