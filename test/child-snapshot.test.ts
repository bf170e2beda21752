// The child snapshot (src/workers/child-snapshot/): task children started from a V8 snapshot that has jsforce
// loaded. Real snapshots made by this machine's Node, real children, the Salesforce simulator over HTTP.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SecretValue } from '../src/secrets/secret-store.js';
import { ChildLauncher, childEntryPoint, childEnvironment, type LaunchedChild } from '../src/workers/child-launcher.js';
import { ChildSession, type SessionHooks } from '../src/workers/child-session.js';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildChildSnapshotScript } from '../src/scripts/build-child-snapshot.js';
import { prepareChildSnapshot, type ChildSnapshot } from '../src/workers/child-snapshot/child-snapshot.js';
import type { RunRequest } from '../src/workers/ipc-protocol.js';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { samplePackage } from './support/salesforce-package.js';

const clientId = `3MVG9snap.${randomBytes(8).toString('hex')}`;
const clientSecret = `snap-secret-${randomBytes(8).toString('hex')}`;
const refreshToken = `5Aep861snap${randomBytes(16).toString('hex')}`;

let sim: SalesforceSim;
let dir: string;
let snapshots: string;
let sourceZip: string;

beforeAll(async () => {
  sim = await startSalesforceSim({ org: { Name: 'Snapshot Org', InstanceName: 'NA1' } });
  sim.addRefreshToken(refreshToken, { clientId, clientSecret });
  dir = await mkdtemp(join(tmpdir(), 'switchyard-child-snapshot-test-'));
  snapshots = join(dir, 'snapshots');
  sourceZip = join(dir, 'package.zip');
  await writeFile(sourceZip, samplePackage(['Foo', 'FooTest']));
});

afterAll(async () => {
  await sim?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const credentials = (): SecretValue => ({ instanceUrl: sim.instanceUrl, refreshToken, clientId, clientSecret });

/** Runs one operation in the child as a worker does (ChildSession), redeeming its IPC grant with the simulator's credentials. */
function runIn(launched: LaunchedChild, type: string, params: unknown, files: RunRequest['files'] = { artifactDir: dir }) {
  const hooks: SessionHooks = {
    onProgress: async () => undefined,
    onLog: async () => undefined,
    redeem: async (token) => (token === 'grant-1' ? credentials() : null),
    issueGrant: async () => ({ error: 'not asked for in this test', retryable: false }),
  };
  return new ChildSession(launched, hooks, 30_000).run({
    taskId: '00000000-0000-4000-8000-00000000000a',
    type,
    attempt: 1,
    maxAttempts: 1,
    params,
    org: { alias: 'snap', instanceUrl: sim.instanceUrl },
    grant: { kind: 'ipc', token: 'grant-1', expiresAt: new Date(Date.now() + 60_000).toISOString() },
    files,
  });
}

async function started(launcher: ChildLauncher): Promise<LaunchedChild> {
  const launched = launcher.take();
  await launched.ready;
  return launched;
}

describe('task children from the child snapshot', () => {
  it('start with jsforce loaded once the snapshot is ready, and run Salesforce operations (core and Metadata API) with it', { timeout: 60_000 }, async () => {
    const events: unknown[] = [];
    const launcher = new ChildLauncher({ keepSpare: false, snapshot: { directory: snapshots }, onSnapshot: (event) => void events.push(event) });
    try {
      expect(await launcher.snapshotSettled).toBe(true);
      expect(events).toEqual([{ ready: true, blob: expect.stringMatching(/\.blob$/) }]);
      const blob = (events[0] as { blob: string }).blob;

      const check = await started(launcher);
      expect(check).toMatchObject({ fromSnapshot: true, snapshotUse: 'preloaded' });
      expect((await readFile(`/proc/${check.process.pid}/cmdline`, 'utf8')).split('\0')).toEqual(expect.arrayContaining(['--snapshot-blob', blob]));
      expect(await runIn(check, 'ORG_CHECK', {})).toMatchObject({
        kind: 'succeeded',
        result: { organizationId: sim.org.Id, organizationName: 'Snapshot Org', username: sim.user.username },
      });

      // The Metadata API, with its schema read from the snapshot's lazy data.
      const deploy = await started(launcher);
      expect(deploy.snapshotUse).toBe('preloaded');
      const outcome = await runIn(deploy, 'DEPLOY', { artifactId: 'snap', testLevel: 'RunSpecifiedTests', runTests: ['FooTest'], pollIntervalMs: 100 }, { artifactDir: dir, sourceZip });
      expect(outcome).toMatchObject({ kind: 'succeeded' });
      const deployId = (outcome as { result: { deployId: string } }).result.deployId;
      expect(sim.getDeploy(deployId)).toMatchObject({ done: true, success: true });
    } finally {
      await launcher.close();
    }
  });

  it('keeps a made snapshot for the next worker, makes a damaged one again, and refuses a directory others may write', { timeout: 60_000 }, async () => {
    const options = { entry: childEntryPoint(), env: childEnvironment(), directory: snapshots };
    const first = await prepareChildSnapshot(options);
    expect(await prepareChildSnapshot(options)).toEqual(first); // the very file (same inode), tried again
    expect((await stat(first.blob)).mode & 0o777).toBe(0o600); // it may hold what jsforce read from the environment

    const garbage = randomBytes(4096); // what a full disk or a stray write could leave
    await writeFile(first.blob, garbage);
    const again = await prepareChildSnapshot(options); // made again, put in its place, and a child from it was ready
    expect(again).toMatchObject({ blob: first.blob, environment: first.environment });
    expect(again.identity).not.toEqual(first.identity);
    expect((await readFile(first.blob)).subarray(0, 4096).equals(garbage)).toBe(false);
    expect((await readdir(snapshots)).filter((name) => name.endsWith('.tmp'))).toEqual([]);

    // A directory others may write, or one under a directory others may write (unless it is sticky, as /tmp is).
    const shared = join(dir, 'shared');
    await prepareChildSnapshot({ ...options, directory: shared });
    await chmod(shared, 0o777);
    await expect(prepareChildSnapshot({ ...options, directory: shared })).rejects.toThrow(`${shared} may be written by other users`);
    const open = join(dir, 'open');
    await mkdir(open, { mode: 0o755 });
    await chmod(open, 0o777);
    await expect(prepareChildSnapshot({ ...options, directory: join(open, 'snapshots') })).rejects.toThrow(`${open} may be written by other users`);
    await chmod(open, 0o1777);
    await expect(prepareChildSnapshot({ ...options, directory: join(open, 'snapshots') })).resolves.toMatchObject({ environment: first.environment });

    const events: unknown[] = [];
    const launcher = new ChildLauncher({ keepSpare: false, snapshot: { directory: shared }, onSnapshot: (event) => void events.push(event) });
    try {
      expect(await launcher.snapshotSettled).toBe(false);
      expect(events).toEqual([{ ready: false, reason: expect.stringMatching(/may be written by other users/) }]);
      const child = await started(launcher); // without a snapshot, as before
      expect(child.fromSnapshot).toBe(false);
      expect(await runIn(child, 'ORG_CHECK', {})).toMatchObject({ kind: 'succeeded', result: { organizationId: sim.org.Id } });
    } finally {
      await launcher.close();
    }
  });

  it('makes none from a script older than what it was bundled from', async () => {
    const script = join(dir, 'stale', 'snapshot.cjs');
    await buildChildSnapshotScript({ output: script });
    const files = JSON.parse(await readFile(`${script}.files.json`, 'utf8')) as Array<{ file: string; sha256: string }>;
    const runtime = files.find((entry) => entry.file.endsWith('workers/child-runtime.js'))!;
    runtime.sha256 = '0'.repeat(64); // as if child-runtime.js had changed since
    await writeFile(`${script}.files.json`, JSON.stringify(files));
    await expect(prepareChildSnapshot({ entry: childEntryPoint(), env: childEnvironment(), directory: snapshots, script })).rejects.toThrow(
      /workers\/child-runtime\.js changed since the child snapshot script was built/,
    );
  });

  it('stops using a snapshot a child could not start from: that task fails, the next children start without it', { timeout: 60_000 }, async () => {
    const directory = join(dir, 'crashing');
    const events: unknown[] = [];
    const launcher = new ChildLauncher({ keepSpare: false, snapshot: { directory }, onSnapshot: (event) => void events.push(event) });
    try {
      expect(await launcher.snapshotSettled).toBe(true);
      const { blob } = events[0] as { blob: string };
      await writeFile(blob, randomBytes(4096)); // damaged in place, after it was tried
      const broken = launcher.take();
      await expect(broken.ready).rejects.toThrow(/exited before it was ready/);
      expect(events.at(-1)).toEqual({ ready: false, reason: expect.stringContaining(`a child started from ${blob} exited before it was ready`) });
      const next = await started(launcher);
      expect(next.fromSnapshot).toBe(false);
      expect(await runIn(next, 'ORG_CHECK', {})).toMatchObject({ kind: 'succeeded' });
    } finally {
      await launcher.close();
    }
  });

  it('a child started in another environment than the snapshot was made in loads jsforce afresh, and still works', { timeout: 60_000 }, async () => {
    // As if a proxy had been configured for the snapshot: jsforce read it when it loaded.
    const made = await prepareChildSnapshot({ entry: childEntryPoint(), env: { ...childEnvironment(), HTTPS_PROXY: 'http://127.0.0.1:9' }, directory: snapshots });
    const events: unknown[] = [];
    const launcher = new ChildLauncher({ keepSpare: false, snapshot: { directory: snapshots }, onSnapshot: (event) => void events.push(event) });
    try {
      await launcher.snapshotSettled;
      // The launcher's own snapshot is for today's environment; a child forked from the other one sees the difference.
      const own = launcher as unknown as { snapshot: ChildSnapshot };
      own.snapshot = { ...made, environment: own.snapshot.environment };
      const child = await started(launcher);
      expect(child).toMatchObject({ fromSnapshot: true, snapshotUse: 'environment-changed' });
      expect(await runIn(child, 'ORG_CHECK', {})).toMatchObject({ kind: 'succeeded', result: { organizationId: sim.org.Id } });

      // The launcher stops using a snapshot that is gone, or was made in an environment its children no longer get.
      await rm(made.blob);
      const next = await started(launcher);
      expect(next.fromSnapshot).toBe(false);
      expect(events.at(-1)).toEqual({ ready: false, reason: `${made.blob} is gone` });
    } finally {
      await launcher.close();
    }
  });

  it('gives every child fresh Math.random and crypto state, not the state saved in the snapshot', { timeout: 60_000 }, async () => {
    const fixture = fileURLToPath(new URL('./fixtures/snapshot-random-child.mjs', import.meta.url));
    const script = join(dir, 'random', 'snapshot.cjs');
    await buildChildSnapshotScript({ input: fixture, output: script });
    const { blob } = await prepareChildSnapshot({ entry: fixture, env: childEnvironment(), directory: snapshots, script });
    const draw = () =>
      new Promise<{ whileMade: unknown[]; random: number; bytes: string }>((resolve, reject) => {
        const child = fork(fixture, [], { env: childEnvironment(), execArgv: ['--snapshot-blob', blob], serialization: 'json' });
        child.once('message', (message) => {
          child.disconnect();
          resolve(message as { whileMade: unknown[]; random: number; bytes: string });
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
      });
    const [first, second] = [await draw(), await draw()];
    expect(first.whileMade).toEqual(second.whileMade); // the same snapshot…
    expect(first.random).not.toBe(second.random); // …and yet fresh generators
    expect(first.bytes).not.toBe(second.bytes);
  });
});
