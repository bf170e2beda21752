// A worker's child launcher and session at the moment the system refuses to fork (EMFILE: the process has no
// file descriptor left for the child's IPC channel), in a process of its own: test/child-launcher.test.ts runs
// it with a low open-file limit, and it fills the rest with /dev/null. It prints one JSON line with what it saw;
// an unheard 'error' event would end it first (exit code 1, no line).
import { closeSync, openSync } from 'node:fs';
import { ChildLauncher } from '../../dist/workers/child-launcher.js';
import { ChildSession } from '../../dist/workers/child-session.js';

const hooks = {
  onProgress: async () => undefined,
  onLog: async () => undefined,
  redeem: async () => null,
  issueGrant: async () => ({ error: 'none here', retryable: false }),
};
const request = {
  taskId: '00000000-0000-4000-8000-000000000001',
  type: 'DIAGNOSTIC',
  attempt: 1,
  maxAttempts: 1,
  params: { steps: 1, stepMs: 0 },
  org: { alias: 'uat', instanceUrl: 'https://example.my.salesforce.com' },
  grant: { kind: 'ask' },
  files: { artifactDir: '/nonexistent' },
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const launcher = new ChildLauncher({ keepSpare: true }); // forks the spare at once, before the descriptors run out
const filler = [];
try {
  for (;;) filler.push(openSync('/dev/null', 'r'));
} catch (error) {
  if (error.code !== 'EMFILE') throw error;
}
const spare = launcher.take(); // its replacement is forked now, and refused
const spareOutcome = new ChildSession(spare, hooks, 500).run(request);
await sleep(300); // the replacement spare's fork, after the child just taken has reported
const refusedChild = launcher.take();
// What the worker checks before it claims a task for a child: a refused fork has no pid.
const refusedPid = refusedChild.process.pid ?? null;
const refused = await new ChildSession(refusedChild, hooks, 500).run(request);
for (const fd of filler) closeSync(fd);
const afterwards = await new ChildSession(launcher.take(), hooks, 500).run(request);
await launcher.close();
console.log(JSON.stringify({ spare: await spareOutcome, refusedPid, refused, afterwards }));
