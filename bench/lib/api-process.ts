// The benchmark's side of an API process it forks (bench/fanout-server.ts, bench/webhooks-server.ts): start it,
// ask it over IPC and wait for the matching reply, stop it. The server side of the protocol is in api-server.ts.
import { fork, type ChildProcess } from 'node:child_process';
import { withTimeout } from './env.js';

/**
 * Forks `file` with IPC (JSON serialisation, stdout/stderr inherited) and waits up to 30 s for its
 * `{ t: 'ready', … }` message, which is returned. `afterFork` runs as soon as the child exists (before it is ready).
 */
export async function forkApi<Ready extends object>(
  file: string,
  name: string,
  options: { execArgv: string[]; env: NodeJS.ProcessEnv; afterFork?: (child: ChildProcess) => void },
): Promise<{ child: ChildProcess; ready: Ready }> {
  const child = fork(file, [], {
    execArgv: options.execArgv,
    env: options.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
  options.afterFork?.(child);
  const ready = await withTimeout(
    new Promise<Ready>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
      child.on('message', (message: { t?: string }) => {
        if (message.t === 'ready') resolve(message as Ready);
      });
    }),
    30_000,
    'the API process to start',
  );
  return { child, ready };
}

/**
 * A forked API process: the requests every API process answers (CPU profile, stop). Subclasses add their own
 * through `request`. `Summary` is what the process replies to `profile-stop`.
 */
export class ForkedApi<Summary> {
  protected constructor(
    readonly child: ChildProcess,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Sends `message` and resolves with the first message back whose `t` is `reply`. */
  protected request<T>(message: object, reply: string, timeoutMs = this.requestTimeoutMs): Promise<T> {
    return withTimeout(
      new Promise<T>((resolve) => {
        const onMessage = (answer: { t?: string }) => {
          if (answer.t !== reply) return;
          this.child.off('message', onMessage);
          resolve(answer as T);
        };
        this.child.on('message', onMessage);
        this.child.send(message);
      }),
      timeoutMs,
      `the API process to answer ${reply}`,
    );
  }

  async profileStart(): Promise<void> {
    await this.request({ t: 'profile-start' }, 'profile-started');
  }

  profileStop(top = 25): Promise<Summary> {
    return this.request({ t: 'profile-stop', top }, 'profile');
  }

  /** Asks the process to close and exit; kills it if it has not exited within 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ t: 'stop' });
    await withTimeout(exited, 10_000, 'the API process to exit').catch(() => {
      this.child.kill('SIGKILL');
    });
  }
}
