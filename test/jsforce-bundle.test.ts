// The prebuilt jsforce bundle (src/workers/operations/salesforce/jsforce-bundle.ts) and its build
// (src/scripts/build-jsforce-bundle.ts, which `npm run build` runs): built here into a directory of the test's
// own, opened in fresh processes (test/support/jsforce-probe.mjs) as a task child opens it, against the
// Salesforce simulator. load-jsforce.test.ts runs Switchyard's operations on the bundle the build put in dist/.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDeferred } from '../src/deferred-modules.js';
import { lazySchemas, type BundleManifest } from '../src/workers/operations/salesforce/jsforce-bundle.js';
import { deferredDependencies, schemaModule } from '../src/workers/operations/salesforce/load-jsforce.js';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { runProbe } from './support/probe.js';
import { samplePackage } from './support/salesforce-package.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const builder = join(root, 'dist/scripts/build-jsforce-bundle.js');
const probe = fileURLToPath(new URL('./support/jsforce-probe.mjs', import.meta.url));
const require = createRequire(import.meta.url);
const jsforceVersion = (require('jsforce/package.json') as { version: string }).version;
const every = <T>(state: T) => Object.fromEntries(deferredDependencies.map((d) => [d.request, state]));

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
  work = await mkdtemp(join(tmpdir(), 'switchyard-jsforce-bundle-'));
  dir = join(work, 'bundle');
  await promisify(execFile)(process.execPath, [builder, dir]);
  manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
}, 60_000);

afterAll(async () => {
  await sim?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A copy of the built bundle with its manifest changed. */
async function variant(name: string, change: (manifest: BundleManifest) => void): Promise<string> {
  const copy = join(work, name);
  await cp(dir, copy, { recursive: true });
  // Paths in the manifest are relative to the bundle; the copy sits next to it, at the same depth.
  const changed = structuredClone(manifest);
  change(changed);
  await writeFile(join(copy, 'manifest.json'), JSON.stringify(changed));
  return copy;
}

interface Opened {
  opened: boolean;
  state: Record<string, unknown>;
  warnings: Array<{ code: string; message: string }>;
  schemaIsStandIn: boolean | null;
}

describe('the jsforce bundle build', () => {
  it('records what the bundle holds, relative to it, and the versions it was built from', () => {
    expect(manifest).toMatchObject({ format: 1, node: process.version, bundle: 'jsforce.cjs', codeCache: 'jsforce.cjs.cache', entries: ['core', 'metadata'] });
    expect(manifest.packages).toContainEqual({ packageJson: expect.stringMatching(/node_modules\/jsforce\/package\.json$/), version: jsforceVersion });
    // Left out, to load as stand-ins: exactly the files jsforce's deferred dependencies resolve to, and the schema.
    expect(manifest.deferred.map((file) => resolve(dir, file)).sort()).toEqual(deferredDependencies.map(resolveDeferred).sort());
    expect(resolve(dir, manifest.schema.module)).toBe(require.resolve(schemaModule));
  });

  it('requires, besides Node built-ins, only the files it leaves out, by paths relative to itself', async () => {
    const code = await readFile(join(dir, 'jsforce.cjs'), 'utf8');
    const requests = new Set([...code.matchAll(/\brequire\("([^"]+)"\)/g)].map((match) => match[1]!).filter((request) => !isBuiltin(request)));
    const leftOut = [...manifest.deferred, manifest.schema.module];
    // What is neither is a package Node cannot find either (an optional one, required inside a try).
    const unresolvable = [...requests].filter((request) => !leftOut.includes(request));
    for (const request of unresolvable) expect(() => createRequire(require.resolve('jsforce')).resolve(request)).toThrow(/Cannot find module/);
    expect(unresolvable.length).toBeLessThanOrEqual(1); // node-fetch's optional 'encoding'
    expect(leftOut.every((file) => requests.has(file) && file.startsWith('../'))).toBe(true);
  });

  it("ships jsforce's Metadata API schema as JSON that reads back as the very same schema, one type at a time", async () => {
    const texts = JSON.parse(await readFile(join(dir, manifest.schema.texts), 'utf8')) as Record<string, string>;
    let parsed = 0;
    const schemas = lazySchemas(() => ((parsed += 1), texts));
    const { ApiSchemas } = require(schemaModule) as { ApiSchemas: Record<string, unknown> };
    expect(Object.keys(schemas)).toEqual(Object.keys(ApiSchemas));
    for (const type of Object.keys(ApiSchemas)) expect(schemas[type]).toEqual(ApiSchemas[type]);
    expect('DeployResult' in schemas).toBe(true);
    expect('NoSuchType' in schemas).toBe(false);
    expect(schemas.NoSuchType).toBeUndefined();
    expect(schemas.DeployResult).toBe(schemas.DeployResult); // built once, then kept
    expect(() => Object.assign(schemas, { DeployResult: {} })).toThrow(TypeError); // read-only, as jsforce only reads it
    expect(parsed).toBeGreaterThan(0);
  });
});

describe('a task child opening the bundle', () => {
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

  it('loads from node_modules, with a warning, when a package in the bundle has another version now', async () => {
    const stale = await variant('stale', (m) => {
      const jsforce = m.packages.find((p) => p.packageJson.endsWith('node_modules/jsforce/package.json'))!;
      jsforce.version = '0.0.1';
    });
    const answer = await runProbe<Opened>(probe, { job: 'open-bundle', dir: stale });
    expect(answer.error).toBeUndefined();
    expect(answer.opened).toBe(false);
    expect(answer.state).toEqual({ from: 'packages', reason: expect.stringMatching(new RegExp(`jsforce/package\\.json is version ${jsforceVersion.replaceAll('.', '\\.')}, the bundle was built from 0\\.0\\.1`)) });
    expect(answer.warnings).toEqual([{ code: 'SWITCHYARD_JSFORCE_BUNDLE', message: expect.stringContaining('run npm run build') }]);
    expect(answer.schemaIsStandIn).toBe(null); // nothing of the bundle's was put in place
  });

  it('loads from node_modules, with a warning, when there is no bundle', async () => {
    const answer = await runProbe<Opened>(probe, { job: 'open-bundle', dir: join(work, 'never-built') });
    expect(answer.opened).toBe(false);
    expect(answer.state).toEqual({ from: 'packages', reason: expect.stringContaining('no bundle in') });
    expect(answer.warnings).toHaveLength(1);
  });

  it('still runs the bundle when its code cache is from another Node, damaged, or refused by V8', async () => {
    const otherNode = await variant('other-node', (m) => {
      m.node = 'v0.0.0';
    });
    const fromOtherNode = await runProbe<Opened>(probe, { job: 'open-bundle', dir: otherNode });
    expect(fromOtherNode).toMatchObject({ opened: true, state: { from: 'bundle', codeCache: 'unusable' }, warnings: [], schemaIsStandIn: true });

    // V8 does not check a code cache's own integrity (a damaged one can crash the process): the manifest's CRC does.
    const damaged = await variant('damaged-cache', () => {});
    const cache = await readFile(join(damaged, 'jsforce.cjs.cache'));
    cache.fill(0x5a, 64, 256);
    await writeFile(join(damaged, 'jsforce.cjs.cache'), cache);
    const fromDamaged = await runProbe<Opened>(probe, { job: 'open-bundle', dir: damaged });
    expect(fromDamaged).toMatchObject({ opened: true, state: { from: 'bundle', codeCache: 'unusable' }, warnings: [] });

    // An edited bundle of the same length: V8 would take the old code from the cache; the CRC of the source stops it.
    const edited = await variant('edited-source', () => {});
    const source = await readFile(join(edited, 'jsforce.cjs'), 'utf8');
    await writeFile(join(edited, 'jsforce.cjs'), source.replace('"use strict"', "'use strict'"));
    expect((await readFile(join(edited, 'jsforce.cjs'))).length).toBe(Buffer.byteLength(source));
    const fromEdited = await runProbe<Opened>(probe, { job: 'open-bundle', dir: edited });
    expect(fromEdited).toMatchObject({ opened: true, state: { from: 'bundle', codeCache: 'unusable' } });

    // Other V8 flags than the build's: V8 refuses the cache and compiles the bundle.
    const otherFlags = await runProbe<Opened>(probe, { job: 'open-bundle', dir }, ['--no-opt']);
    expect(otherFlags).toMatchObject({ opened: true, state: { from: 'bundle', codeCache: 'rejected' }, warnings: [] });
  });
});
