// Forks the per-task child processes. Each child runs one operation and exits; none is ever reused (unlike
// BullMQ's sandboxed processors, which pool them). To take Node's start-up cost off the dispatch path, one
// spare child is forked ahead of time: it has loaded nothing but its entry point and never held credentials.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { messageKind } from './child-message.js';

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
}

export class ChildLauncher {
  private spare: LaunchedChild | null = null;
  private closed = false;
  private readonly entry = childEntryPoint();

  constructor(private readonly options: { keepSpare: boolean }) {
    if (options.keepSpare) this.spare = this.launch(true);
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
    const child = fork(this.entry, [], {
      env: childEnvironment(),
      execArgv: [],
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
    const ready = new Promise<void>((resolve, reject) => {
      const settle = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      const onMessage = (message: unknown) => {
        if (messageKind(message) !== 'ready') return;
        settle();
        resolve();
      };
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`child exited before it was ready (code ${code}, signal ${signal})`));
      const onError = (error: Error) => {
        settle();
        reject(error);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
    ready.catch(() => undefined); // observed by whoever takes the child
    return { process: child, ready, wasSpare };
  }
}
