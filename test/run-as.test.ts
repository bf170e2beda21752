// SWITCHYARD_RUN_AS (src/run-as.ts): a worker started as root switches user before it forks task children, and
// then a child, running as that same user, cannot read the worker's environment or memory through /proc. The
// processes are real: a parent that loads the compiled module (dist/), switches, and forks a probe child.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const runAsModule = fileURLToPath(new URL('../dist/run-as.js', import.meta.url));
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const isRoot = process.getuid?.() === 0;
let dir: string;

const parentSource = `
import { fork } from 'node:child_process';
const [runAsModule, spec] = process.argv.slice(2);
const { runAs } = await import(runAsModule);
let ids = null;
try {
  if (spec) ids = runAs(spec);
} catch (error) {
  console.log(JSON.stringify({ error: error.message }));
  process.exit(3);
}
const child = fork(new URL('./probe.cjs', import.meta.url).pathname, [], { env: { PATH: process.env.PATH }, cwd: process.cwd() });
child.on('message', (message) => {
  console.log(JSON.stringify({ ids, groups: process.getgroups(), child: message }));
  child.disconnect();
});
`;

// A worker as server-command.ts starts one with SWITCHYARD_RUN_AS: the child snapshot made as root
// (prepareChildSnapshotBeforeSwitch), then the switch, then a task child started from it; what the switched user
// (the children's) may do to the snapshot.
const snapshotParentSource = `
import { accessSync, constants } from 'node:fs';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
const [dist, directory, spec] = process.argv.slice(2);
const { prepareChildSnapshotBeforeSwitch } = await import(dist + 'cli/worker-command.js');
const { ChildLauncher } = await import(dist + 'workers/child-launcher.js');
const { runAs } = await import(dist + 'run-as.js');
const logger = { info: () => undefined, warn: (fields, message) => console.error(message, JSON.stringify(fields)) };
const snapshot = await prepareChildSnapshotBeforeSwitch({ SWITCHYARD_CHILD_SNAPSHOT_DIR: directory }, logger, spec);
runAs(spec);
const launcher = new ChildLauncher({ keepSpare: false, snapshot: { prepared: snapshot } });
const child = launcher.take();
await child.ready;
const writable = (path) => { try { accessSync(path, constants.W_OK); return true; } catch { return false; } };
const childUid = Number(readFileSync('/proc/' + child.process.pid + '/status', 'utf8').match(/^Uid:\\s+(\\d+)/m)[1]);
console.log(JSON.stringify({ uid: process.getuid(), childUid, snapshotUse: child.snapshotUse, blobWritable: writable(snapshot.blob), directoryWritable: writable(dirname(snapshot.blob)) }));
child.process.disconnect();
await launcher.close();
`;

// What a compromised task child would try: its parent's environment and memory.
const probeSource = `
const fs = require('node:fs');
const attempt = (file) => { try { return fs.readFileSync(file, 'latin1').includes(process.argv[2] || 'SWITCHYARD_CANARY=') ? 'read the canary' : 'read'; } catch (error) { return error.code; } };
process.send({ uid: process.getuid(), environ: attempt('/proc/' + process.ppid + '/environ'), mem: attempt('/proc/' + process.ppid + '/mem') });
`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'switchyard-run-as-'));
  await chmod(dir, 0o755); // the switched parent and its child must read the scripts
  await writeFile(path.join(dir, 'parent.mjs'), parentSource, { mode: 0o644 });
  await writeFile(path.join(dir, 'probe.cjs'), probeSource, { mode: 0o644 });
  await writeFile(path.join(dir, 'snapshot-parent.mjs'), snapshotParentSource, { mode: 0o644 });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function runParent(spec: string | null, options: { uid?: number; gid?: number } = {}) {
  const canary = randomBytes(12).toString('hex');
  const result = spawnSync(process.execPath, [path.join(dir, 'parent.mjs'), runAsModule, ...(spec ? [spec] : [])], {
    cwd: dir,
    env: { PATH: process.env.PATH, SWITCHYARD_CANARY: canary },
    encoding: 'utf8',
    timeout: 20_000,
    ...options,
  });
  return { status: result.status, stderr: result.stderr, output: result.stdout ? JSON.parse(result.stdout.trim().split('\n').at(-1)!) : null };
}

describe.skipIf(!isRoot)('SWITCHYARD_RUN_AS (needs root, as the container starts the workers)', () => {
  it("without it, a child of the same user reads its parent's environment", () => {
    const { status, stderr, output } = runParent(null);
    expect(status, stderr).toBe(0);
    expect(output.child).toMatchObject({ uid: 0, environ: 'read the canary' });
  });

  it("with it, the parent switches user and groups, and its child cannot read the parent's environment or memory", () => {
    const { status, stderr, output } = runParent('nobody');
    expect(status, stderr).toBe(0);
    expect(output.ids.uid).not.toBe(0);
    expect(output.groups).not.toContain(0);
    expect(output.child).toEqual({ uid: output.ids.uid, environ: 'EACCES', mem: 'EACCES' });
  });

  it('does nothing for the user it runs as already, and refuses another one without root', () => {
    const nobody = runParent('nobody').output.ids as { uid: number; gid: number };
    const already = runParent('nobody', nobody);
    expect(already.status, already.stderr).toBe(0);
    expect(already.output.ids).toEqual(nobody);
    const other = runParent('daemon', nobody);
    expect(other.status).toBe(3);
    expect(other.output.error).toBe(`SWITCHYARD_RUN_AS=daemon: switching users needs the process to start as root (it runs as uid ${nobody.uid})`);
    const unknown = runParent('no-such-user');
    expect(unknown.output.error).toBe('SWITCHYARD_RUN_AS: there is no user "no-such-user" in /etc/passwd');
  });

  it('a worker that switches makes the child snapshot as root first: its children start from it and cannot change it', () => {
    const directory = path.join(dir, 'snapshots');
    const result = spawnSync(process.execPath, [path.join(dir, 'snapshot-parent.mjs'), dist, directory, 'nobody'], { cwd: dir, env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    const output = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(output.uid).not.toBe(0);
    expect(output).toEqual({ uid: output.uid, childUid: output.uid, snapshotUse: 'preloaded', blobWritable: false, directoryWritable: false });
  }, 60_000);
});
