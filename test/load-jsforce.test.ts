// jsforce as a task child loads it (src/workers/operations/salesforce/load-jsforce.ts): the packages jsforce
// requires eagerly but Switchyard never uses are stand-ins until first use. Each case runs in a fresh Node
// process (test/support/jsforce-probe.mjs), as a task child would: the module cache is per process.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferredDependencies } from '../src/workers/operations/salesforce/jsforce-bundle.js';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { runProbe } from './support/probe.js';
import { samplePackage } from './support/salesforce-package.js';

type States = Record<string, 'deferred' | 'loaded' | 'absent'>;
const every = <T>(state: T) => Object.fromEntries(deferredDependencies.map((d) => [d.request, state]));

const probe = fileURLToPath(new URL('./support/jsforce-probe.mjs', import.meta.url));
const clientId = `3MVG9probe.${randomBytes(8).toString('hex')}`;
const clientSecret = `probe-secret-${randomBytes(8).toString('hex')}`;
const refreshToken = `5Aep861probe${randomBytes(16).toString('hex')}`;

let sim: SalesforceSim;
let dir: string;

beforeAll(async () => {
  sim = await startSalesforceSim({ org: { Name: 'Probe Org', InstanceName: 'NA1' } });
  sim.addRefreshToken(refreshToken, { clientId, clientSecret });
  dir = await mkdtemp(join(tmpdir(), 'switchyard-jsforce-probe-'));
});

afterAll(async () => {
  await sim?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const probeJob = <T>(job: Record<string, unknown>) => runProbe<T>(probe, job);

interface RunResult {
  type: string;
  ok: boolean;
  code?: string;
  message?: string;
  result?: Record<string, any>;
}

describe("jsforce's deferred dependencies", () => {
  // From the prebuilt bundle `npm run build` makes (src/module-bundles/; the test command builds it), with its code
  // cache, and from node_modules, as a child without a current bundle loads it.
  it.each([
    ['bundle', { from: 'bundle', codeCache: 'accepted' }],
    ['packages', { from: 'packages', reason: 'skipped' }],
  ] as const)('are not loaded by any Salesforce operation Switchyard runs (jsforce from %s)', { timeout: 60_000 }, async (source, jsforceFrom) => {
    const sourceZip = join(dir, 'package.zip');
    await writeFile(sourceZip, samplePackage(['Foo', 'FooTest']));
    const credentials = { instanceUrl: sim.instanceUrl, refreshToken, clientId, clientSecret };
    const deploy = { artifactId: 'probe', testLevel: 'RunSpecifiedTests', runTests: ['FooTest'], pollIntervalMs: 100 };
    const first = await probeJob<{ results: RunResult[]; states: States; jsforce: unknown }>({
      job: 'operations',
      source,
      credentials,
      artifactDir: dir,
      runs: [
        { type: 'ORG_CHECK', params: {} },
        { type: 'VALIDATE', params: deploy, sourceZip },
        { type: 'DEPLOY', params: deploy, sourceZip },
        { type: 'RETRIEVE', params: { members: [{ type: 'ApexClass', members: ['Foo'] }], pollIntervalMs: 100 } },
      ],
    });
    expect(first.error).toBeUndefined();
    expect(first.results.map((r) => [r.type, r.ok, r.code])).toEqual([
      ['ORG_CHECK', true, undefined],
      ['VALIDATE', true, undefined],
      ['DEPLOY', true, undefined],
      ['RETRIEVE', true, undefined],
    ]);
    const [orgCheck, validation, deployment] = first.results;
    expect(orgCheck!.result).toMatchObject({ organizationId: sim.org.Id, organizationName: 'Probe Org', username: sim.user.username });
    expect(sim.getDeploy(validation!.result!.deployId)).toMatchObject({ done: true, success: true, options: { checkOnly: true } });
    expect(sim.getDeploy(deployment!.result!.deployId)).toMatchObject({ done: true, success: true });
    expect(first.jsforce).toEqual(jsforceFrom);
    // Connecting put every stand-in in place, and none of the operations used one.
    expect(first.states).toEqual(every('deferred'));

    // A quick deploy of that validation, in a child of its own as Switchyard runs it.
    const second = await probeJob<{ results: RunResult[]; states: States; jsforce: unknown }>({
      job: 'operations',
      source,
      credentials,
      artifactDir: dir,
      runs: [{ type: 'QUICK_DEPLOY', params: { deployId: validation!.result!.deployId, pollIntervalMs: 100 } }],
    });
    expect(second.results.map((r) => [r.type, r.ok, r.code, r.message])).toEqual([['QUICK_DEPLOY', true, undefined, undefined]]);
    expect(sim.getDeploy(validation!.result!.deployId)!.quickDeployedAs).toBe(second.results[0]!.result!.deployId);
    expect(second.states).toEqual(every('deferred'));
    expect(second.jsforce).toEqual(jsforceFrom);
  });

  it('still work when something uses them (through the code that imports them, where that is easy)', async () => {
    const answer = await probeJob<{ uses: Record<string, unknown>; before: States; after: States }>({ job: 'use-each' });
    expect(answer.error).toBeUndefined();
    expect(answer.uses).toEqual({
      csv: [{ Id: '001', Name: 'Acme' }],
      csvOut: 'Id,Name\n001,Acme\n',
      formIsFormData: true,
      formBody: expect.stringMatching(/Content-Disposition: form-data; name="entity_content"\r\nContent-Type: application\/json\r\n\r\n\{"a":1\}/),
      agentProxyHost: '127.0.0.1',
      xml: '<deploy><id>0Af</id></deploy>',
      url: '/services/data',
      stringifyIn: true,
      stringifyKeys: true,
      stringifyPrototype: true,
    });
    expect(answer.before).toEqual(every('deferred'));
    // csv-parse (the streaming parser) stays deferred: parseCSV uses the sync one.
    expect(answer.after).toEqual({ ...every('loaded'), 'csv-parse': 'deferred' });
  });

  it('are none of them ES modules compiled to CommonJS, as the stand-ins answer without loading them', async () => {
    const answer = await probeJob<{ flags: Record<string, boolean>; states: States }>({ job: 'es-module-flags' });
    expect(answer.states).toEqual(every('loaded')); // the real packages, nothing deferred in this process
    expect(answer.flags).toEqual(every(false));
  });
});
