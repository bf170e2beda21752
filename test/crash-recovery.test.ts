// Crash safety of task execution, with nothing mocked:
// - a worker process is SIGKILLed mid-task: its children exit by themselves (IPC disconnect), BullMQ's
//   stalled-job detection hands the job to another worker, which treats the re-run as a lost run
//   (requeue with after: WORKER_LOST, or FAILED WORKER_LOST when attempts are used up);
// - Redis loses everything (FLUSHDB): a starting worker's reconcile re-enqueues QUEUED/SCHEDULED tasks,
//   recovers RUNNING ones whose worker is gone, and restores the schedules' job schedulers.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskLifecycle } from '../src/domain/tasks/task-lifecycle.js';
import { reconcileTasks } from '../src/workers/reconciler.js';
import type { ChildSession } from '../src/workers/child-session.js';
import { workerKey } from '../src/workers/worker-host.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { FINAL_STATUSES, startTestWorker, waitFor, waitForTaskStatus, type TestWorker } from './support/worker-harness.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
/** Redis database this file may flush; nothing else of the suite is expected to live there. */
const flushableRedisUrl = 'redis://127.0.0.1:6379/9';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A node's raw UUID from its global id (base64 of "Type:uuid"). */
function rawId(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
}

/** The process state letter from /proc/<pid>/stat (R, S, Z…), or null when there is no such process. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Running, as opposed to gone or a zombie nobody has reaped yet (PID 1 here may not reap orphans). */
function isRunning(pid: number): boolean {
  const state = procState(pid);
  return state !== null && state !== 'Z' && state !== 'X';
}

function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** An API of its own (closed after the tests), an OWNER token, and an org `alias` registered on it. */
async function apiWithOrg(name: string, alias: string, options: Parameters<typeof startTestApi>[1] = {}): Promise<{ api: TestApi; token: string }> {
  const api = await startTestApi(name, options);
  cleanups.push(() => api.close());
  const token = await api.token('OWNER');
  await registerOrg(api, token, alias);
  return { api, token };
}

async function registerOrg(api: TestApi, token: string, alias: string): Promise<void> {
  const res = await api.gql(
    `mutation($alias: String!) { registerOrg(input: { alias: $alias, kind: DEVELOPER, credentials: { instanceUrl: "https://crash.my.salesforce.com", refreshToken: "5Aep861crash" } }) { __typename } }`,
    { alias },
    token,
  );
  expect(res.body.data?.registerOrg.__typename, JSON.stringify(res.body)).toBe('RegisterOrgSuccess');
}

async function submit(api: TestApi, token: string, input: Record<string, unknown>): Promise<string> {
  const res = await api.gql(
    `mutation($input: SubmitTaskInput!) { submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id status } } ... on Error { code message } } }`,
    { input: { type: 'DIAGNOSTIC', ...input } },
    token,
  );
  const result = res.body.data?.submitTask;
  expect(result?.__typename, JSON.stringify(res.body)).toBe('SubmitTaskSuccess');
  return rawId(result.task.id);
}

interface TaskView {
  status: string;
  attempts: number;
  result: any;
  error: { code: string; message: string } | null;
  startedAt: string | null;
  runAt: string | null;
  events: Array<{ seq: number; kind: string; payload: any }>;
}

async function taskView(api: TestApi, token: string, id: string): Promise<TaskView> {
  const res = await api.gql(
    `query($id: ID!) { task(id: $id) { status attempts result error { code message } startedAt runAt events(first: 500) { edges { node { seq kind payload } } } } }`,
    { id },
    token,
  );
  const task = res.body.data?.task;
  if (!task) throw new Error(`task ${id} not readable: ${JSON.stringify(res.body)}`);
  return { ...task, events: task.events.edges.map((edge: any) => edge.node) };
}

function waitFinal(api: TestApi, token: string, id: string, timeoutMs = 15_000): Promise<TaskView> {
  return waitForTaskStatus((taskId) => taskView(api, token, taskId), id, FINAL_STATUSES, timeoutMs);
}

function statusEvents(task: TaskView): any[] {
  return task.events.filter((event) => event.kind === 'STATUS').map((event) => event.payload);
}

/**
 * `switchyard worker --queues normal` as a process of its own (`detached`: the leader of its own process group, as a
 * command started from a shell is), sharing the API's database, Redis prefix and secret key.
 */
function spawnWorker(api: TestApi, secretKey: Buffer): { proc: ChildProcess; output: string[]; exited: Promise<{ code: number | null; signal: string | null }> } {
  const output: string[] = [];
  const proc: ChildProcess = spawn(process.execPath, ['bin/switchyard.js', 'worker', '--queues', 'normal'], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      DATABASE_URL: api.databaseUrl,
      REDIS_URL: api.redisUrl,
      SWITCHYARD_QUEUE_PREFIX: api.queuePrefix,
      SWITCHYARD_JOB_LOCK_MS: '2000',
      SWITCHYARD_HEARTBEAT_MS: '300',
      SWITCHYARD_SECRET_KEY: secretKey.toString('hex'),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  proc.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  proc.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return { proc, output, exited };
}

/** An org, a worker process (spawnWorker) and a DIAGNOSTIC task of `input` running in it, past its first step. */
async function taskRunningInWorker(alias: string, input: Record<string, unknown>) {
  const secretKey = randomBytes(32);
  const { api, token } = await apiWithOrg(`crash_${alias}`, alias, { secretKey });
  const worker = spawnWorker(api, secretKey);
  const id = await submit(api, token, { org: alias, ...input });
  const running = await waitFor(
    async () => {
      const row = await api.prisma.task.findUniqueOrThrow({ where: { id } });
      const progressed = await api.prisma.taskEvent.count({ where: { taskId: id, kind: 'PROGRESS' } });
      return row.status === 'RUNNING' && row.childPid && progressed >= 1 ? row : null;
    },
    20_000,
    `the task running in the worker process (worker output: ${worker.output.join('')})`,
  );
  return { api, token, id, running, ...worker };
}

describe('a worker stopped with Ctrl-C in its terminal', () => {
  it('drains: the SIGINT the terminal sends its whole process group does not reach the task children, whose tasks finish; the same SIGINT passed on by npm is the same Ctrl-C', async () => {
    // Task children used to share the worker's process group: Ctrl-C (or any signal to the group) killed them
    // at once, so running tasks ended CHILD_CRASHED (their last attempt FAILED) instead of being drained.
    const { api, token, proc, exited, id, running } = await taskRunningInWorker('sigint', { maxAttempts: 1, params: { steps: 8, stepMs: 250 } });
    expect(childrenOf(proc.pid!)).toContain(running.childPid);

    process.kill(-proc.pid!, 'SIGINT'); // the worker's process group, as a terminal's Ctrl-C
    await new Promise((resolve) => setTimeout(resolve, 100)); // (two at once would merge into one pending signal)
    process.kill(proc.pid!, 'SIGINT'); // and again to the worker alone, as `npm start` passes its own on
    expect(await exited).toEqual({ code: 0, signal: null });
    const task = await waitFinal(api, token, id);
    expect(task.status, JSON.stringify(task.error)).toBe('SUCCEEDED');
    expect(task.attempts).toBe(1);
    expect(task.result.pid).toBe(running.childPid);
  }, 60_000);
});

describe('a worker signalled again while it drains', () => {
  it('exits at once with 128 + the signal, when the second signal comes more than a second after the first', async () => {
    const { proc, output, exited } = await taskRunningInWorker('twice', { maxAttempts: 2, params: { steps: 40, stepMs: 250 } });
    proc.kill('SIGTERM'); // the drain begins: the task has ten seconds to go
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const secondAt = Date.now();
    proc.kill('SIGTERM'); // "now"
    expect(await exited).toEqual({ code: 143, signal: null });
    expect(Date.now() - secondAt).toBeLessThan(2_000);
    expect(output.join('')).toContain('signalled again: exiting at once');
  }, 60_000);
});

describe('a worker killed with SIGKILL mid-task', () => {
  it('loses no task: its children exit, the run is retried as WORKER_LOST or failed when attempts are used up', async () => {
    const secretKey = randomBytes(32);
    const { api, token } = await apiWithOrg('crash_kill', 'crash', { secretKey });

    const { proc, output, exited } = spawnWorker(api, secretKey);
    const workerPid = proc.pid!;

    // Long enough to be killed mid-run, short enough for the retry to finish quickly. The first one reads
    // the credentials, which also proves the worker process decrypts with the API's key.
    const params = { steps: 12, stepMs: 250 };
    const retried = await submit(api, token, { org: 'crash', maxAttempts: 2, params: { ...params, readCredentials: true } });
    const exhausted = await submit(api, token, { org: 'crash', maxAttempts: 1, params });

    const firstRun = await waitFor(
      async () => {
        const rows = await api.prisma.task.findMany({ where: { id: { in: [retried, exhausted] } } });
        if (!rows.every((row) => row.status === 'RUNNING' && row.childPid)) return null;
        // Well into the run: the credentials were redeemed and a step reported.
        const redeemed = await api.prisma.taskEvent.count({ where: { taskId: retried, kind: 'LOG', payload: { path: ['message'], equals: 'credentials redeemed' } } });
        const progressed = await api.prisma.taskEvent.count({ where: { taskId: { in: [retried, exhausted] }, kind: 'PROGRESS' } });
        return redeemed === 1 && progressed >= 2 ? rows : null;
      },
      20_000,
      `both tasks running in the worker process (worker output: ${output.join('')})`,
    );
    for (const row of firstRun) {
      expect(row.attempts).toBe(1);
      expect(row.workerId).toMatch(new RegExp(`:${workerPid}:[0-9a-f]{6}$`));
    }
    const taskChildren = firstRun.map((row) => row.childPid!);
    const allChildren = childrenOf(workerPid);
    for (const pid of taskChildren) expect(allChildren).toContain(pid);
    expect(allChildren.length).toBeGreaterThanOrEqual(2); // the task children, plus the spare when it is forked

    proc.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    // The children notice the closed IPC channel and exit by themselves; nobody signals them.
    await waitFor(async () => allChildren.every((pid) => !isRunning(pid)), 3000, `children ${allChildren} of the killed worker to exit`);

    const worker: TestWorker = await startTestWorker(api, { lockDurationMs: 2000, stalledIntervalMs: 500 });
    cleanups.push(() => worker.close());

    const [a, b] = await Promise.all([waitFinal(api, token, retried, 20_000), waitFinal(api, token, exhausted, 20_000)]);

    // maxAttempts 2: the lost run is requeued, and the second attempt succeeds in a new child.
    expect(a.status).toBe('SUCCEEDED');
    expect(a.attempts).toBe(2);
    expect(a.result.attempt).toBe(2);
    expect(a.result.pid).not.toBe(taskChildren[0]);
    expect(a.result.credentialFingerprint).toMatch(/^[0-9a-f]{12}$/);
    const aStatuses = statusEvents(a).map((p) => `${p.status}${p.after ? `:${p.after}` : ''}`);
    expect(aStatuses).toEqual(['QUEUED', 'RUNNING', 'QUEUED:WORKER_LOST', 'RUNNING', 'SUCCEEDED']);
    expect(statusEvents(a)[3].worker).toBe(worker.host.workerId);

    // maxAttempts 1: nothing left to retry, so the lost run fails the task.
    expect(b.status).toBe('FAILED');
    expect(b.attempts).toBe(1);
    expect(b.error?.code).toBe('WORKER_LOST');
    expect(statusEvents(b).map((p) => p.status)).toEqual(['QUEUED', 'RUNNING', 'FAILED']);
    expect(statusEvents(b).at(-1).code).toBe('WORKER_LOST');

    // Nothing is left behind as RUNNING, and the killed worker's heartbeat has expired.
    expect(await api.prisma.task.count({ where: { status: 'RUNNING' } })).toBe(0);
    expect(await api.redis.exists(`${api.queuePrefix}:worker:${firstRun[0]!.workerId}`)).toBe(0);
  }, 60_000);
});

describe('Redis losing everything', () => {
  it('is repaired by the reconcile of a starting worker: jobs, lost runs and schedulers come back', async () => {
    const { api, token } = await apiWithOrg('crash_flush', 'flush', { redisUrl: flushableRedisUrl, waitForRedis: true });

    const quick = { steps: 2, stepMs: 10 };
    const queued = [
      await submit(api, token, { org: 'flush', params: quick }),
      await submit(api, token, { org: 'flush', params: quick, queue: 'BATCH' }),
    ];
    const runAt = new Date(Date.now() + 5000);
    const scheduled = await submit(api, token, { org: 'flush', params: quick, runAt: runAt.toISOString() });
    // Runs whose worker died while Redis was lost: one with attempts left, one without.
    const lostRetry = await submit(api, token, { org: 'flush', params: quick, maxAttempts: 3 });
    const lostFinal = await submit(api, token, { org: 'flush', params: quick, maxAttempts: 1 });
    for (const id of [lostRetry, lostFinal]) {
      await api.prisma.task.update({
        where: { id },
        data: { status: 'RUNNING', attempts: 1, startedAt: new Date(), workerId: 'gone-host:999999', childPid: 999_999 },
      });
    }
    const res = await api.gql(
      `mutation { scheduleTask(input: { type: DIAGNOSTIC, org: "flush", cron: "0 0 1 1 *", params: { steps: 1, stepMs: 1 } }) { __typename ... on ScheduleTaskSuccess { schedule { id } } } }`,
      {},
      token,
    );
    expect(res.body.data?.scheduleTask.__typename, JSON.stringify(res.body)).toBe('ScheduleTaskSuccess');
    const scheduleId = rawId(res.body.data.scheduleTask.schedule.id);

    const tasks = await api.prisma.task.findMany({ where: { id: { in: [...queued, scheduled, lostRetry, lostFinal] } } });
    expect(tasks.find((t) => t.id === scheduled)?.status).toBe('SCHEDULED');
    for (const task of tasks) expect(await api.queues.get(task.queue).getJob(task.jobId!), `job of ${task.id} before the flush`).toBeTruthy();
    expect(await api.queues.hasScheduler(scheduleId)).toBe(true);

    const flusher = new Redis(flushableRedisUrl, { maxRetriesPerRequest: 1 });
    try {
      expect(await flusher.flushdb()).toBe('OK');
      expect(await flusher.dbsize()).toBe(0);
    } finally {
      flusher.disconnect();
    }
    for (const task of tasks) expect(await api.queues.get(task.queue).getJob(task.jobId!)).toBeUndefined();
    expect(await api.queues.hasScheduler(scheduleId)).toBe(false);

    const worker = await startTestWorker(api, { lockDurationMs: 2000, stalledIntervalMs: 500 });
    cleanups.push(() => worker.close());
    // start() ran the reconcile before taking jobs.
    expect(await api.queues.hasScheduler(scheduleId)).toBe(true);
    const report = worker.logLines.map((line) => JSON.parse(line)).find((line) => line.msg === 'reconciled tasks with the queue');
    expect(report, worker.logLines.join('')).toBeTruthy();
    expect([...report.requeued].sort()).toEqual([...queued, scheduled].sort());
    expect(report.recovered).toEqual([lostRetry]);
    expect(report.failed).toEqual([lostFinal]);
    expect(worker.logLines.some((line) => line.includes('restored schedules missing from Redis'))).toBe(true);

    for (const id of queued) {
      const task = await waitFinal(api, token, id);
      expect(task.status).toBe('SUCCEEDED');
      expect(task.attempts).toBe(1);
    }
    const retried = await waitFinal(api, token, lostRetry);
    expect(retried.status).toBe('SUCCEEDED');
    expect(retried.attempts).toBe(2);
    expect(statusEvents(retried).map((p) => `${p.status}${p.after ? `:${p.after}` : ''}`)).toEqual(['QUEUED', 'QUEUED:WORKER_LOST', 'RUNNING', 'SUCCEEDED']);
    const failed = await waitFinal(api, token, lostFinal);
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.code).toBe('WORKER_LOST');
    expect(failed.attempts).toBe(1);

    // The scheduled one waits for its runAt, then runs.
    const waiting = await api.prisma.task.findUniqueOrThrow({ where: { id: scheduled } });
    if (Date.now() < runAt.getTime() - 500) {
      expect(waiting.status).toBe('SCHEDULED');
      const job = await api.queues.get(waiting.queue).getJob(waiting.jobId!);
      expect(await job?.getState()).toBe('delayed');
    }
    const ran = await waitFinal(api, token, scheduled, 15_000);
    expect(ran.status).toBe('SUCCEEDED');
    expect(new Date(ran.startedAt!).getTime()).toBeGreaterThanOrEqual(runAt.getTime());
    expect(await api.prisma.task.count({ where: { status: { in: ['RUNNING', 'QUEUED', 'SCHEDULED'] } } })).toBe(0);
  }, 45_000);
});

describe('lost runs found by several workers at once', () => {
  /** A RUNNING task whose run (on `workerId`, attempt 1) no worker is doing, and whose job is gone. */
  async function orphanedRun(api: TestApi, token: string, alias: string, workerId: string, params: Record<string, unknown>): Promise<string> {
    const id = await submit(api, token, { org: alias, params, maxAttempts: 3, runAt: new Date(Date.now() + 3_600_000).toISOString() });
    const task = await api.prisma.task.findUniqueOrThrow({ where: { id } });
    expect(await api.queues.get(task.queue).remove(task.jobId!)).toBe(1);
    await api.prisma.task.update({ where: { id }, data: { status: 'RUNNING', runAt: null, attempts: 1, startedAt: new Date(), workerId, childPid: 999_999 } });
    return id;
  }

  it('a reconciler that saw a lost run before another recovered it leaves the new run alone: the task runs once more, not twice', async () => {
    const { api, token } = await apiWithOrg('crash_two_reconcilers', 'two');
    const id = await orphanedRun(api, token, 'two', 'gone-host:999999:000000', { steps: 20, stepMs: 200 });

    // B's start-up pass sees the lost run first, then looks at its worker's heartbeat again after a long grace…
    const slow = startTestWorker(api, { heartbeatMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // …while A's pass recovers it, and A runs it again (4 s) under a new job.
    const fast = await startTestWorker(api, { heartbeatMs: 200 });
    cleanups.push(() => fast.close());
    const running = await waitFor(async () => {
      const task = await api.prisma.task.findUnique({ where: { id } });
      return task?.status === 'RUNNING' && task.attempts === 2 ? task : null;
    }, 5000, 'the run A recovered');
    expect(running.workerId).toBe(fast.host.workerId);
    const b = await slow; // B's pass has ended: after its grace, with the new run under way
    cleanups.push(() => b.close());
    // Two workers of one host and pid (as a container restarted in place would be) are told apart.
    expect(b.host.workerId.split(':').slice(0, 2)).toEqual(fast.host.workerId.split(':').slice(0, 2));
    expect(b.host.workerId).not.toBe(fast.host.workerId);
    const report = b.logLines.map((line) => JSON.parse(line)).find((line) => line.msg === 'reconciled tasks with the queue');
    expect(report?.recovered ?? []).toEqual([]);

    const done = await waitFinal(api, token, id, 15_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(statusEvents(done).map((p) => `${p.status}${p.after ? `:${p.after}` : ''}`)).toEqual(['SCHEDULED', 'QUEUED:WORKER_LOST', 'RUNNING', 'SUCCEEDED']);
  }, 30_000);

  it('a reconciler whose lost run was taken up again under the same job during its grace leaves that run alone', async () => {
    const { api, token } = await apiWithOrg('crash_same_job', 'same');
    const id = await orphanedRun(api, token, 'same', 'gone-host:999998:000000', { steps: 1, stepMs: 0 });
    const { jobId } = await api.prisma.task.findUniqueOrThrow({ where: { id } });
    let suspected!: () => void;
    const isSuspect = new Promise<void>((resolve) => (suspected = resolve));
    let taken!: () => void;
    const takenUp = new Promise<void>((resolve) => (taken = resolve));
    let looks = 0;
    const pass = reconcileTasks({
      prisma: api.prisma,
      queues: api.queues,
      lifecycle: new TaskLifecycle(api.prisma, api.services.journal),
      // No heartbeat lists the task, before the grace or after it; the look after the grace waits for the new run.
      isRunningTask: async () => {
        looks += 1;
        if (looks === 1) suspected();
        else await takenUp;
        return false;
      },
      workerGraceMs: 50,
      logger: pino({ level: 'silent' }),
    });
    await isSuspect;
    // During the grace, the lost run ended retryably (keeping its job id) and another worker claimed that job.
    await api.prisma.task.update({ where: { id }, data: { attempts: 2, workerId: 'other-host:999997:000000', startedAt: new Date() } });
    taken();
    const report = await pass;
    expect(report).toEqual({ requeued: [], recovered: [], failed: [] });
    expect(await api.prisma.task.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'RUNNING', attempts: 2, workerId: 'other-host:999997:000000', jobId });
  });

  it("a job handed over as stalled while its worker is alive (it only lost the job's lock) waits for that run, and recovers it once the worker is gone", async () => {
    const { api, token } = await apiWithOrg('crash_stalled_alive', 'alive');
    // The owner: a live worker (its heartbeat beats) that consumes no queue the task is in.
    const owner = await startTestWorker(api, { queues: ['CRITICAL'] });
    cleanups.push(() => owner.close());
    const id = await orphanedRun(api, token, 'alive', owner.host.workerId, { steps: 1, stepMs: 10 });
    // The owner still has the run (its child goes on; here a stand-in without a process), so its heartbeat lists it.
    owner.host.executor.running.set(id, { pid: undefined, abort: () => undefined } as unknown as ChildSession);
    await waitFor(async () => (await api.redis.get(workerKey(api.queuePrefix, owner.host.workerId)))?.includes(id) || null, 5000, 'the owner to list the run');
    const task = await api.prisma.task.findUniqueOrThrow({ where: { id } });
    // Its job comes back to another worker, as BullMQ hands over a job whose lock expired.
    const other = await startTestWorker(api, { queues: ['NORMAL'], heartbeatMs: 300 });
    cleanups.push(() => other.close());
    const spare = await waitFor(async () => other.host.launcher.sparePid, 5000, 'the spare child');
    // Delayed a little, to be marked stalled (as BullMQ counts it in the job's hash) before a worker takes it.
    const job = await api.queues.get(task.queue).add(task.type, { taskId: id }, { jobId: task.jobId!, delay: 300 });
    const jobKey = `${api.queuePrefix}:${job.queueName}:${job.id}`;
    expect(await api.redis.hget(jobKey, 'name')).toBe(task.type);
    expect(await api.redis.hincrby(jobKey, 'stc', 1)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Looking again takes no child: the spare waiting for real work is the same.
    expect(other.host.launcher.sparePid).toBe(spare);
    const untouched = await api.prisma.task.findUniqueOrThrow({ where: { id } });
    expect(untouched).toMatchObject({ status: 'RUNNING', attempts: 1, workerId: owner.host.workerId });

    await owner.close(); // its heartbeat goes with it
    const done = await waitFinal(api, token, id, 15_000);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(statusEvents(done).map((p) => `${p.status}${p.after ? `:${p.after}` : ''}`)).toEqual(['SCHEDULED', 'QUEUED:WORKER_LOST', 'RUNNING', 'SUCCEEDED']);
  }, 30_000);
});
