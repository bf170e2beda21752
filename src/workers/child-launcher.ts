// Forks the per-task child processes. Each child runs one operation and exits; none is ever reused (unlike
// BullMQ's sandboxed processors, which pool them). To take Node's start-up cost off the dispatch path, one
// spare child is forked ahead of time: it has loaded nothing but its entry point (and, from the child snapshot,
// jsforce) and never held credentials. Once the child snapshot is ready (child-snapshot/), children start from it.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { messageKind } from './child-message.js';
import { prepareChildSnapshot, type ChildSnapshot } from './child-snapshot/child-snapshot.js';
import type { SnapshotUse } from './child-snapshot/preloaded.js';
import { environmentKey } from './child-snapshot/snapshot-environment.js';

/**
 * The compiled child entry point. Tests run the TypeScript sources, but children always run the build in
 * dist/ (made by `npm run build`), exactly as in production.
 */
export function childEntryPoint(): string {
  const here = fileURLToPath(import.meta.url);
  const compiled = here.endsWith('.ts') ? fileURLToPath(new URL('../../dist/workers/child-main.js', import.meta.url)) : fileURLToPath(new URL('./child-main.js', import.meta.url));
  if (!existsSync(compiled)) throw new Error(`Child entry point ${compiled} is missing: run \`npm run build\``);
  return compiled;
}

/**
 * What a child inherits: enough to run Node, nothing that is a secret. Database and Redis URLs, the secret
 * key and Vault credentials stay in the worker. Not HOME either: Node looks for packages in $HOME/.node_modules
 * and $HOME/.node_libraries when node_modules has none (node-fetch asks for an optional 'encoding' that way), and
 * the worker's user can write there, so a compromised child could plant code every later child would run.
 */
export function childEnvironment(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'LANG', 'TZ', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'];
  return Object.fromEntries(keep.filter((key) => process.env[key] !== undefined).map((key) => [key, process.env[key]]));
}

/** Longest wait for a taken child to start before its replacement spare is forked anyway. */
const replenishDelayMs = 50;

export interface LaunchedChild {
  process: ChildProcess;
  /** Resolves when the child has loaded its entry point and can take a request. */
  ready: Promise<void>;
  /** Whether this child was the pre-forked spare. */
  wasSpare: boolean;
  /** Whether it was started from the child snapshot. */
  fromSnapshot: boolean;
  /** What the child said of the snapshot when it was ready (preloaded.ts); unset until then, or if it did not start from one. */
  snapshotUse?: SnapshotUse;
}

export interface ChildLauncherOptions {
  keepSpare: boolean;
  /**
   * Start children from a child snapshot (child-snapshot/): one made beforehand (`prepared`), or one this
   * launcher makes or finds in `directory` in the background; false: never.
   */
  snapshot?: { directory?: string } | { prepared: ChildSnapshot } | false;
  /** Told once whether children start from a snapshot, and when they stop doing so. */
  onSnapshot?: (event: { ready: true; blob: string } | { ready: false; reason: string }) => void;
}

export class ChildLauncher {
  private spare: LaunchedChild | null = null;
  private closed = false;
  private readonly entry = childEntryPoint();
  private snapshot: ChildSnapshot | null = null;
  /** Stops making the snapshot when the launcher closes. */
  private readonly preparing = new AbortController();
  /** Settles once the snapshot is ready (true) or will not be used (false); for tests and benchmarks. */
  readonly snapshotSettled: Promise<boolean>;

  constructor(private readonly options: ChildLauncherOptions) {
    const snapshot = options.snapshot;
    if (snapshot && 'prepared' in snapshot) this.snapshot = snapshot.prepared;
    if (options.keepSpare) this.spare = this.launch(true);
    if (!snapshot) this.snapshotSettled = Promise.resolve(false);
    else if ('prepared' in snapshot) this.snapshotSettled = Promise.resolve(true);
    else this.snapshotSettled = this.prepareSnapshot(snapshot.directory);
  }

  /**
   * Makes (or finds) the child snapshot in the background; until it is ready, and if it never is, children
   * start without one. The spare forked meanwhile stays as it is: it is ready, and a child all the same.
   */
  private async prepareSnapshot(directory: string | undefined): Promise<boolean> {
    try {
      const snapshot = await prepareChildSnapshot({ entry: this.entry, env: childEnvironment(), signal: this.preparing.signal, ...(directory ? { directory } : {}) });
      if (this.closed) return false;
      this.snapshot = snapshot;
      this.options.onSnapshot?.({ ready: true, blob: snapshot.blob });
      return true;
    } catch (error) {
      if (!this.closed) this.options.onSnapshot?.({ ready: false, reason: error instanceof Error ? error.message : String(error) });
      return false;
    }
  }

  /**
   * The snapshot to start the next child from, if any: the very file that was tried (not gone, not another put in
   * its place), made in the environment children get now.
   */
  private snapshotFor(env: NodeJS.ProcessEnv): ChildSnapshot | null {
    const snapshot = this.snapshot;
    if (!snapshot) return null;
    const stat = statSync(snapshot.blob, { throwIfNoEntry: false });
    if (environmentKey(env) !== snapshot.environment) this.dropSnapshot("the children's environment changed since the snapshot was made");
    else if (!stat) this.dropSnapshot(`${snapshot.blob} is gone`);
    else if (stat.dev !== snapshot.identity.dev || stat.ino !== snapshot.identity.ino) this.dropSnapshot(`${snapshot.blob} was replaced since it was tried`);
    return this.snapshot;
  }

  /** Children start without a snapshot from now on. */
  private dropSnapshot(reason: string): void {
    if (!this.snapshot) return;
    this.snapshot = null;
    this.options.onSnapshot?.({ ready: false, reason });
  }

  /** Pid of the pre-forked spare child waiting to be taken, if any (read-only; for tests and diagnostics). */
  get sparePid(): number | undefined {
    return this.spare?.process.pid;
  }

  /**
   * A fresh child for one operation; with keepSpare, the spare is handed out and a new one forked once the
   * child just taken has started its operation (its first report or its exit, or after replenishDelayMs):
   * fork() blocks this process for milliseconds (the kernel copies the page tables of the whole worker) and
   * the new spare's start-up takes a core for tens of milliseconds, neither of which should delay the
   * request to the child just taken or its first steps.
   */
  take(): LaunchedChild {
    if (this.closed) throw new Error('ChildLauncher is closed');
    let child = this.spare;
    this.spare = null;
    if (!child || child.process.exitCode !== null || child.process.signalCode !== null || !child.process.connected) {
      child = this.launch(false);
    }
    if (this.options.keepSpare) this.replenishAfterStart(child);
    return child;
  }

  private replenishAfterStart(child: LaunchedChild): void {
    const proc = child.process;
    const started = () => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', started);
      // After this turn of the event loop: the session handles the message first (its event statement goes out
      // before fork() blocks this process), since this listener was registered before the session's.
      setImmediate(() => this.replenish());
    };
    // 'ready' may still be on its way from a child that was not the spare.
    const onMessage = (message: unknown) => messageKind(message) !== 'ready' && started();
    const timer = setTimeout(started, replenishDelayMs);
    proc.on('message', onMessage);
    proc.once('exit', started);
  }

  private replenish(): void {
    if (!this.closed && !this.spare) this.spare = this.launch(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.preparing.abort();
    await this.snapshotSettled; // no snapshot maker or trial child left behind
    const spare = this.spare;
    this.spare = null;
    // A spare that a signal ended has no exit code, only a signal code: it exited already, and waiting for its exit
    // event would wait for ever.
    if (spare && spare.process.exitCode === null && spare.process.signalCode === null) {
      const exited = new Promise((resolve) => spare.process.once('exit', resolve));
      spare.process.kill('SIGTERM');
      await exited;
    }
  }

  private launch(wasSpare: boolean): LaunchedChild {
    const env = childEnvironment();
    const snapshot = this.snapshotFor(env);
    const child = fork(this.entry, [], {
      env,
      // From the snapshot, Node runs its main function instead of the entry point (the same child runtime).
      execArgv: snapshot ? ['--snapshot-blob', snapshot.blob] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
      // A process group of its own: a signal to the worker's group (Ctrl-C in a terminal, `kill -- -<pgid>`) must
      // reach the worker alone, which then drains its running tasks; the children hear from it over IPC, and
      // exit by themselves when that channel closes (child-main.ts), so a worker that dies leaves none behind.
      detached: true,
    });
    // A fork the system refuses (EAGAIN: too many processes; EMFILE, ENFILE: too many open files) is an 'error'
    // event and no 'exit'; so is a message the child can no longer receive (EPIPE: it has just exited). Unheard,
    // either would end the worker and every task it runs. The first ends the child's `ready` (and its run, in
    // ChildSession); the second changes nothing, as the child's exit follows anyway.
    child.on('error', () => undefined);
    const launched: LaunchedChild = { process: child, ready: Promise.resolve(), wasSpare, fromSnapshot: snapshot !== null };
    launched.ready = new Promise<void>((resolve, reject) => {
      const settle = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      const onMessage = (message: unknown) => {
        if (messageKind(message) !== 'ready') return;
        const use = (message as { snapshot?: unknown }).snapshot;
        if (use === 'preloaded' || use === 'environment-changed') launched.snapshotUse = use;
        settle();
        resolve();
      };
      const onExit = (code: number | null, signal: string | null) => {
        // One started from the snapshot should not (unless this worker stopped it): the next ones start without it.
        const stopped = code === null && (signal === 'SIGTERM' || signal === 'SIGKILL');
        if (snapshot && !stopped && !this.closed) this.dropSnapshot(`a child started from ${snapshot.blob} exited before it was ready (code ${code}, signal ${signal})`);
        reject(new Error(`child exited before it was ready (code ${code}, signal ${signal})`));
      };
      const onError = (error: Error) => {
        settle();
        reject(error);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    launched.ready.catch(() => undefined); // observed by whoever takes the child
    return launched;
  }
}
