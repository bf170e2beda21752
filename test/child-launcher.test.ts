// ChildLauncher (src/workers/child-launcher.ts) forks the per-task children and keeps a spare ready; at shutdown
// it stops the spare. Real child processes, forked from dist/ (npm test builds it).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChildLauncher } from '../src/workers/child-launcher.js';
import { waitFor } from './support/worker-harness.js';

describe('the child launcher', () => {
  it('closes at once when its spare was killed by a signal before (an OOM kill, an operator)', async () => {
    const launcher = new ChildLauncher({ keepSpare: true });
    const pid = launcher.sparePid!;
    process.kill(pid, 'SIGKILL');
    // Reaped (gone from /proc) only once Node has seen it exit.
    await waitFor(async () => !existsSync(`/proc/${pid}`), 5000, `child ${pid} to be reaped`);
    const outcome = await Promise.race([launcher.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000))]);
    expect(outcome).toBe('closed');
  });

  it('survives a fork the system refuses: the run reports it never started, and the next fork works', async () => {
    // Node reports a refused fork (EAGAIN, EMFILE, ENFILE) as an 'error' event and no exit; unheard, it ended the
    // worker and every task it ran. A process of its own, with a low open-file limit it then fills.
    const probe = fileURLToPath(new URL('./support/fork-refused-probe.mjs', import.meta.url));
    const result = spawnSync('bash', ['-c', 'ulimit -n 256 && exec "$0" "$1"', process.execPath, probe], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status, result.stderr).toBe(0);
    const seen = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(seen.spare).toMatchObject({ kind: 'succeeded' });
    expect(seen.refusedPid).toBeNull(); // known at once: the worker then claims nothing (task-executor.ts)
    expect(seen.refused).toEqual({ kind: 'not-started', code: 'EMFILE' });
    expect(seen.afterwards).toMatchObject({ kind: 'succeeded' });
  });

  it('stops a live spare when it closes', async () => {
    const launcher = new ChildLauncher({ keepSpare: true });
    const pid = launcher.sparePid!;
    await launcher.close();
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(() => launcher.take()).toThrow('ChildLauncher is closed');
  });
});
