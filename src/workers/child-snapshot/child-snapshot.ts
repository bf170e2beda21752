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
// user cannot write. The directory, and every directory above it, must belong to root or to this process's user
// and be writable by no one else (a sticky one above it, such as /tmp, may be writable by all). A worker that
// switches users (SWITCHYARD_RUN_AS) makes the snapshot as root, before it switches (server-command.ts), so its
// children, which run as the user it switched to, can read it but not change it; one that does not switch shares
// its user with its children anyway, whose threats SWITCHYARD_RUN_AS is for.
import { spawn, fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
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
  /** The file as it was tried: a file put in its place since is not used (the launcher checks before each fork). */
  identity: { dev: number; ino: number };
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
  /**
   * The user children will run as, when it is not this process's (SWITCHYARD_RUN_AS, this process still root):
   * the snapshot is then readable by that user's group only, and tried as that user.
   */
  childUser?: { uid: number; gid: number };
  /** Stops making or trying it (the worker is closing). */
  signal?: AbortSignal;
}

/** The list of files the script was bundled from, beside it (src/scripts/build-child-snapshot.ts writes it). */
export const scriptFilesSuffix = '.files.json';

export interface ScriptFile {
  /** Relative to the script's directory. */
  file: string;
  /** fileDigest() of it when the script was bundled. */
  sha256: string;
}

/**
 * A file's content digest. By content, not size and modification time as module bundles check theirs: the image
 * bundles the script in its build stage and copies it, dist/ and node_modules to the stage that runs them.
 */
export function fileDigest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * The child snapshot for this Node, script and environment: made now if no usable one is kept, then tried.
 * Rejects with why there is none (no script, a stale one, an unsafe directory, Node failing to make or start it).
 */
export async function prepareChildSnapshot(options: PrepareOptions): Promise<ChildSnapshot> {
  const script = scriptOf(options.script ?? snapshotScriptFile());
  const source = readFileSync(script);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const environment = environmentKey(options.env);
  // The script's path too: code restored from a snapshot finds its files (module bundles, deferred packages,
  // the schema) relative to where the script was when the snapshot was made.
  const key = createHash('sha256')
    .update([process.version, process.execPath, process.arch, script, environment, String(options.childUser?.gid ?? '')].join('\0'))
    .update(source)
    .digest('hex')
    .slice(0, 32);
  const directory = safeDirectory(options.directory ?? defaultSnapshotDirectory());
  const blob = join(directory, `${key}.blob`);
  const trial = { entry: options.entry, env: options.env, timeoutMs, user: options.childUser, signal: options.signal };
  if (statSync(blob, { throwIfNoEntry: false })?.isFile()) {
    try {
      await tryChild(blob, trial);
      return { blob, environment, identity: identityOf(blob) };
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // Damaged, or made by a Node that crashed: made again below and put in its place (never deleted: another
      // worker may be starting children from it).
    }
  }
  const work = join(directory, `${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await makeSnapshot(script, work, options.env, timeoutMs, options.signal);
    // It may hold what jsforce read from the environment (a proxy's credentials, say): for the children only.
    if (options.childUser) {
      chownSync(work, process.getuid!(), options.childUser.gid);
      chmodSync(work, 0o640);
    } else chmodSync(work, 0o600);
    await tryChild(work, trial);
    renameSync(work, blob);
  } finally {
    rmSync(work, { force: true });
  }
  return { blob, environment, identity: identityOf(blob) };
}

/** The device and inode of a file, to tell it from one put in its place later. */
export function identityOf(file: string): { dev: number; ino: number } {
  const { dev, ino } = statSync(file);
  return { dev, ino };
}

/**
 * The script's real path, if it is there and still what it was bundled from: a script older than the build in
 * dist/ (tsc alone after a change) or than node_modules would start children with yesterday's code.
 */
function scriptOf(file: string): string {
  let script: string;
  let files: ScriptFile[];
  try {
    script = realpathSync(file);
    files = JSON.parse(readFileSync(script + scriptFilesSuffix, 'utf8')) as ScriptFile[];
  } catch {
    throw new Error(`there is no child snapshot script at ${file} (npm run build makes it)`);
  }
  for (const { file: relative, sha256 } of files) {
    const path = join(dirname(script), relative);
    let digest: string | null;
    try {
      digest = fileDigest(path);
    } catch {
      digest = null;
    }
    if (digest !== sha256) throw new Error(`${path} changed since the child snapshot script was built (npm run build makes it again)`);
  }
  return script;
}

/**
 * The directory's real path, made if missing (readable by the children's user, who may be another). Refused
 * unless it, and every directory above it, belongs to root or to this process's user and is writable by no one
 * else: whoever may write a directory on the way may put another in its place (a directory above may be
 * writable by all if it is sticky, as /tmp is, since then only its owner may move what is in it).
 */
function safeDirectory(directory: string): string {
  mkdirSync(directory, { recursive: true, mode: 0o755 });
  const real = realpathSync(directory);
  const uid = process.getuid?.();
  for (let path = real; ; path = dirname(path)) {
    const stat = lstatSync(path);
    if (!stat.isDirectory()) throw new Error(`${path} is not a directory`);
    if (uid !== undefined && stat.uid !== uid && stat.uid !== 0) throw new Error(`${path} belongs to another user`);
    const sticky = (stat.mode & 0o1000) !== 0 && path !== real;
    if ((stat.mode & 0o022) !== 0 && !sticky) throw new Error(`${path} may be written by other users`);
    if (path === dirname(path)) break;
  }
  return real;
}

function makeSnapshot(script: string, blob: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const maker = spawn(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', script], { env, stdio: ['ignore', 'ignore', 'pipe'], ...(signal ? { signal } : {}) });
    const stderr = captured(maker.stderr);
    const timer = setTimeout(() => maker.kill('SIGKILL'), timeoutMs);
    maker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    maker.once('close', (code, exitSignal) => {
      clearTimeout(timer);
      // Node warns about a built-in it has not verified in snapshots: the script leaves every one it knows of
      // out of the snapshot (lazy modules), so one that loaded anyway is a script to fix, not a snapshot to use.
      const unverified = /^.*not yet fully verified whether built-in module.*$/m.exec(stderr())?.[0];
      if (code === 0 && !unverified) resolve();
      else reject(new Error(code === 0 ? `node --build-snapshot warned: ${unverified}` : `node --build-snapshot exited with ${exitSignal ?? code}: ${lastLines(stderr())}`));
    });
  });
}

interface Trial {
  entry: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  user: { uid: number; gid: number } | undefined;
  signal: AbortSignal | undefined;
}

/**
 * Starts the child's entry point from the snapshot, as the launcher would (as the children's user), and waits
 * for it to be ready with jsforce preloaded.
 */
function tryChild(blob: string, { entry, env, timeoutMs, user, signal }: Trial): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = fork(entry, [], {
      env,
      execArgv: ['--snapshot-blob', blob],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      ...(signal ? { signal } : {}),
    });
    const stderr = captured(child.stderr!);
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
    child.once('exit', (code, signal) => done(new Error(`a child started from the snapshot exited with ${signal ?? code} before it was ready: ${lastLines(stderr())}`)));
  });
}

/** The first 4 KiB a process writes on the stream, to tell why it failed. */
function captured(stream: Readable): () => string {
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    if (text.length < 4096) text += chunk;
  });
  return () => text;
}

/**
 * The last lines of what a process wrote, for the worker's log. Both processes run in the children's
 * environment, whose proxy URLs may carry credentials: any user:password@ in a URL is left out.
 */
const lastLines = (text: string) =>
  text
    .replace(/\/\/[^/\s@]+@/g, '//…@')
    .trim()
    .split('\n')
    .filter(Boolean)
    .slice(-3)
    .join(' | ')
    .slice(0, 500) || '(nothing on stderr)';
