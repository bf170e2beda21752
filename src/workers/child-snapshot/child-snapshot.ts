// Makes the child snapshot a worker starts its task children from (snapshot-main.ts says what it holds and
// why). Worker side only.
//
// The snapshot is made on the machine that runs it, when a worker starts: a V8 snapshot only starts with the
// very Node binary that made it, and it keeps what modules computed from the environment when they loaded, so
// it is made by the worker's Node, in the environment its children get (childEnvironment()). Made once per
// script, Node and environment and kept, then tried: a child started from it must say it is ready with jsforce
// preloaded before any task's child starts from it. Until then, and whenever any of this fails, children start
// as before, without a snapshot: slower, never wrong.
//
// A snapshot is code every child runs, with an org's credentials, so it is kept as dist/ is: where the children's
// user cannot write. The directory must belong to root or to this process's user and be writable by no one
// else. A worker that switches users (SWITCHYARD_RUN_AS) makes the snapshot as root, before it switches
// (server-command.ts), so its children, which run as the user it switched to, can read it but not change it;
// one that does not switch shares its user with its children anyway, whose threats SWITCHYARD_RUN_AS is for.
import { spawn, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { messageKind } from '../child-message.js';
import { environmentKey } from './snapshot-environment.js';

/** The bundled script snapshots are made from (src/scripts/build-child-snapshot.ts writes it). */
export function snapshotScriptFile(): string {
  const here = fileURLToPath(import.meta.url);
  // Tests run the TypeScript sources; the script is always the build's, as for the child's entry point.
  return here.endsWith('.ts')
    ? fileURLToPath(new URL('../../../dist/workers/child-snapshot/snapshot.cjs', import.meta.url))
    : fileURLToPath(new URL('./snapshot.cjs', import.meta.url));
}

/** Where snapshots are kept when the caller names no directory: the system's temporary directory, per user. */
export function defaultSnapshotDirectory(): string {
  return join(tmpdir(), `switchyard-child-snapshots-${process.getuid?.() ?? 'user'}`);
}

export interface ChildSnapshot {
  /** The snapshot file, for `--snapshot-blob`. */
  blob: string;
  /** environmentKey() of the environment it was made in: a child started in another does not use it. */
  environment: string;
}

export interface PrepareOptions {
  /** The child's entry point, forked from the snapshot to try it. */
  entry: string;
  /** The environment children get. */
  env: NodeJS.ProcessEnv;
  directory?: string;
  script?: string;
  /** Longest wait for making the snapshot, and for the child started from it to be ready. */
  timeoutMs?: number;
}

/**
 * The child snapshot for this Node, script and environment: made now if no usable one is kept, then tried.
 * Rejects with why there is none (no script, a directory others may write, Node failing to make or start it).
 */
export async function prepareChildSnapshot(options: PrepareOptions): Promise<ChildSnapshot> {
  const script = options.script ?? snapshotScriptFile();
  const timeoutMs = options.timeoutMs ?? 60_000;
  let source: Buffer;
  try {
    source = readFileSync(script);
  } catch {
    throw new Error(`there is no child snapshot script at ${script} (npm run build makes it)`);
  }
  const environment = environmentKey(options.env);
  const key = createHash('sha256').update([process.version, process.execPath, process.arch, environment].join('\0')).update(source).digest('hex').slice(0, 32);
  const directory = ownDirectory(options.directory ?? defaultSnapshotDirectory());
  const blob = join(directory, `${key}.blob`);
  if (statSync(blob, { throwIfNoEntry: false })?.isFile()) {
    try {
      await tryChild(options.entry, blob, options.env, timeoutMs);
      return { blob, environment };
    } catch {
      rmSync(blob, { force: true }); // damaged, or made by a Node that crashed: made again below
    }
  }
  const work = join(directory, `${key}.${process.pid}.${Date.now()}.tmp`);
  try {
    await makeSnapshot(script, work, options.env, timeoutMs);
    await tryChild(options.entry, work, options.env, timeoutMs);
    chmodSync(work, 0o644);
    renameSync(work, blob);
  } finally {
    rmSync(work, { force: true });
  }
  return { blob, environment };
}

/**
 * The directory, made if missing (readable by the children's user, who may be another); refused unless it is a
 * real directory of root or of this process's user that no one else may write.
 */
function ownDirectory(directory: string): string {
  mkdirSync(directory, { recursive: true, mode: 0o755 });
  const stat = lstatSync(directory);
  const uid = process.getuid?.();
  if (!stat.isDirectory()) throw new Error(`${directory} is not a directory`);
  if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) throw new Error(`${directory} belongs to another user`);
  if ((stat.mode & 0o022) !== 0) throw new Error(`${directory} may be written by other users`);
  return directory;
}

function makeSnapshot(script: string, blob: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const maker = spawn(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    maker.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    const timer = setTimeout(() => maker.kill('SIGKILL'), timeoutMs);
    maker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    maker.once('close', (code, signal) => {
      clearTimeout(timer);
      // Node warns about built-ins it has not verified in snapshots (tty, which a logging package jsforce loads
      // reads); only the exit status says whether it made one.
      if (code === 0) resolve();
      else reject(new Error(`node --build-snapshot exited with ${signal ?? code}: ${lastLine(stderr)}`));
    });
  });
}

/** Starts the child's entry point from the snapshot, as the launcher would, and waits for it to be ready. */
function tryChild(entry: string, blob: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = fork(entry, [], { env, execArgv: ['--snapshot-blob', blob], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    const done = (error?: Error) => {
      clearTimeout(timer);
      child.removeAllListeners('message');
      child.removeAllListeners('exit');
      if (child.connected) child.disconnect(); // the child exits when its channel closes (child-main.ts)
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(new Error('a child started from the snapshot was not ready in time'));
    }, timeoutMs);
    child.on('error', () => undefined);
    child.on('message', (message: unknown) => {
      if (messageKind(message) !== 'ready') return;
      const use = (message as { snapshot?: unknown }).snapshot;
      done(use === 'preloaded' ? undefined : new Error(`a child started from the snapshot said it was ${String(use ?? 'not started from one')}`));
    });
    child.once('exit', (code, signal) => done(new Error(`a child started from the snapshot exited with ${signal ?? code} before it was ready: ${lastLine(stderr)}`)));
  });
}

const lastLine = (text: string) => text.trim().split('\n').filter(Boolean).slice(-3).join(' | ').slice(0, 500) || '(nothing on stderr)';
