// Runs one job in a fresh Node process (a probe script under test/support) and returns its answer: for what
// only a new process can show, such as which modules a task child loads (the module cache is per process).
import { fork } from 'node:child_process';

/** `execArgv`: Node and V8 flags for the probe process (none by default, as the launcher forks task children). */
export function runProbe<T>(script: string, job: Record<string, unknown>, execArgv: string[] = []): Promise<T & { error?: string }> {
  return new Promise((resolve, reject) => {
    // No proxy settings: with HTTPS_PROXY or HTTP_PROXY set, jsforce and axios send requests through a proxy.
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(https?|no)_proxy$/i.test(key)));
    const child = fork(script, [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (answer) => resolve(answer as T & { error?: string }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`probe exited (${code}) without answering`)));
    child.send(job);
  });
}
