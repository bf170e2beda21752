// ChildLauncher (src/workers/child-launcher.ts) forks the per-task children and keeps a spare ready; at shutdown
// it stops the spare. Real child processes, forked from dist/ (npm test builds it).
import { existsSync } from 'node:fs';
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

  it('stops a live spare when it closes', async () => {
    const launcher = new ChildLauncher({ keepSpare: true });
    const pid = launcher.sparePid!;
    await launcher.close();
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(() => launcher.take()).toThrow('ChildLauncher is closed');
  });
});
