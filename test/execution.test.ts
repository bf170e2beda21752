// Task execution end to end: the GraphQL API, a real WorkerHost in this process forking real child processes
// (from dist/), BullMQ on Redis and Postgres. Nothing is mocked. Tests run one after another on purpose: the
// spare-child checks need to know which children the worker forked.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { AuditService } from '../src/domain/audit/audit-service.js';
import { ScheduleService } from '../src/domain/tasks/schedule-service.js';
import { loadEnv } from '../src/env.js';
import { controlChannel } from '../src/events/task-event-bus.js';
import { OrgLock } from '../src/workers/org-lock.js';
import { uuidFromName } from '../src/domain/ids.js';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { errorFields, startTestApi, type TestApi } from './support/harness.js';
import { FINAL_STATUSES, startTestWorker, waitFor, waitForTaskStatus, type TestWorker } from './support/worker-harness.js';

let api: TestApi;
let sim: SalesforceSim;
let worker: TestWorker;
let token: string;

const KILL_GRACE_MS = 500; // what startTestWorker configures

const TASK_FIELDS = `id type status queue source requestedBy attempts maxAttempts progress phase result error { code message }
  runAt createdAt startedAt finishedAt cancelRequestedAt retryBackoffMs timeoutMs`;
const TASK = `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} events(first: 500) { totalCount edges { node { seq kind payload createdAt } } } } }`;
const SUBMIT = `mutation($input: SubmitTaskInput!) {
  submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { ${TASK_FIELDS} } } ${errorFields} }
}`;
const CANCEL = `mutation($id: ID!) {
  cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { ${TASK_FIELDS} } } ${errorFields} }
}`;
const SCHEDULE = `mutation($input: ScheduleTaskInput!) {
  scheduleTask(input: $input) { __typename ... on ScheduleTaskSuccess { schedule { id cron timezone nextRunAt type } } ${errorFields} }
}`;
const REMOVE_SCHEDULE = `mutation($id: ID!) {
  removeSchedule(id: $id) { __typename ... on RemoveScheduleSuccess { removed { id } } ${errorFields} }
}`;

interface EventView {
  seq: number;
  kind: 'STATUS' | 'PROGRESS' | 'LOG' | 'RESULT';
  payload: any;
  createdAt: string;
}

interface TaskView {
  id: string;
  type: string;
  status: string;
  source: string;
  requestedBy: string;
  attempts: number;
  maxAttempts: number;
  progress: number;
  phase: string | null;
  result: any;
  error: { code: string; message: string } | null;
  runAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequestedAt: string | null;
  events: { totalCount: number; edges: Array<{ node: EventView }> };
}

/** The worker's log lines for the ends of a task's runs, in order. */
function runEnds(id: string): Array<Record<string, unknown>> {
  const uuid = rawId(id, 'Task');
  return worker.logLines.map((line) => JSON.parse(line)).filter((entry) => entry.taskId === uuid && String(entry.msg).startsWith('task run ended'));
}

/** The UUID inside a global id such as base64("Task:<uuid>"). */
function rawId(globalId: string, typename: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  expect(decoded).toMatch(new RegExp(`^${typename}:[0-9a-f-]{36}$`));
  return decoded.slice(typename.length + 1);
}

async function submit(input: Record<string, unknown>): Promise<TaskView> {
  const res = await api.gql(SUBMIT, { input: { org: 'exec', ...input } }, token);
  expect(res.body.errors).toBeUndefined();
  expect(res.body.data.submitTask, JSON.stringify(res.body.data.submitTask)).toMatchObject({ __typename: 'SubmitTaskSuccess' });
  return res.body.data.submitTask.task;
}

/** A one-step DIAGNOSTIC that fails as `failWith` says (its first `failTimes` runs, or every run). */
function submitFailing(failWith: { code: string; message: string; retryable: boolean; failTimes?: number }, maxAttempts: number, retryBackoffMs: number): Promise<TaskView> {
  return submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0, failWith }, maxAttempts, retryBackoffMs });
}

async function getTask(id: string): Promise<TaskView> {
  const res = await api.gql(TASK, { id }, token);
  expect(res.body.errors).toBeUndefined();
  return res.body.data.task;
}

const waitForEnd = (id: string, timeoutMs = 10_000) => waitForTaskStatus(getTask, id, FINAL_STATUSES, timeoutMs);

interface RunningChild {
  pid: number;
  /** How the child process ended, as the worker's ChildProcess saw it; null when it was seen too late. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null;
}

/**
 * Waits until the task runs in a child and returns that child. Task.childPid is not part of the API: the
 * worker records it in the task row while the child runs. The child must be alive while the task is RUNNING
 * and the operation (`minRunMs` long at least) cannot have finished yet; how it ends is read from the
 * worker's session for the task (in-process, read only).
 */
/**
 * Waits for the operation itself to be under way (its first progress report). A task is RUNNING, with its child,
 * from its claim on, but the child gets its request only once the worker has prepared the run: a cancel or an
 * abort before that stops the child without a word (SIGTERM) instead of through the operation.
 */
async function operationUnderWay(id: string): Promise<void> {
  const uuid = rawId(id, 'Task');
  await waitFor(async () => api.prisma.taskEvent.findFirst({ where: { taskId: uuid, kind: 'PROGRESS' } }), 10_000, 'the operation to report progress');
}

async function runningChild(id: string, minRunMs: number): Promise<RunningChild> {
  const uuid = rawId(id, 'Task');
  return waitFor(
    async () => {
      const row = await api.prisma.task.findUnique({ where: { id: uuid }, select: { status: true, childPid: true, startedAt: true } });
      if (!(row?.status === 'RUNNING' && row.childPid && row.startedAt)) return null;
      const session = worker.host.executor.running.get(uuid) as unknown as { child: { process: ChildProcess } } | undefined;
      // The child starts after startedAt and runs minRunMs at least (worker and test share this clock).
      if (Date.now() < row.startedAt.getTime() + minRunMs - 50) {
        expect(isAlive(row.childPid), `child ${row.childPid} of running task ${id}`).toBe(true);
        expect(session?.child.process.pid).toBe(row.childPid);
      }
      const proc = session?.child.process;
      const exit = proc
        ? new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
            if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
            else proc.once('exit', (code, signal) => resolve({ code, signal }));
          })
        : null;
      return { pid: row.childPid, exit };
    },
    10_000,
    `task ${id} to run in a child`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ESRCH');
    return false;
  }
}

function events(task: TaskView): EventView[] {
  const list = task.events.edges.map((edge) => edge.node);
  expect(task.events.totalCount).toBe(list.length);
  // Gap-free and in order.
  expect(list.map((e) => e.seq)).toEqual(list.map((_, i) => i + 1));
  return list;
}

function statuses(task: TaskView): Array<Record<string, unknown>> {
  return statusPayloads(events(task));
}

/**
 * The STATUS events of a task still under way, without events()' checks: its count and its list are two reads,
 * and an event written between them (the retry's) makes them differ for a moment.
 */
function statusesSoFar(task: TaskView): Array<Record<string, unknown>> {
  return statusPayloads(task.events.edges.map((edge) => edge.node));
}

function statusPayloads(list: EventView[]): Array<Record<string, unknown>> {
  return list
    .filter((e) => e.kind === 'STATUS')
    .map((e) => e.payload);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function registerOrg(alias: string, instanceUrl = `https://${alias}.sandbox.my.salesforce.com`): Promise<void> {
  const res = await api.gql(
    `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename } }`,
    { input: { alias, kind: 'SANDBOX', credentials: { instanceUrl, refreshToken: `5Aep861${alias}Token` } } },
    token,
  );
  expect(res.body.data?.registerOrg?.__typename, JSON.stringify(res.body)).toBe('RegisterOrgSuccess');
}

beforeAll(async () => {
  api = await startTestApi('execution');
  token = await api.token('OWNER');
  await registerOrg('exec');
  // Orgs for QUICK_DEPLOY tasks (the lock test), on the Salesforce simulator: the operation itself ends fast
  // (the simulator refuses the unknown validation), so only the lock decides when each may start.
  sim = await startSalesforceSim();
  for (const alias of ['locked', 'free']) {
    sim.addRefreshToken(`5Aep861${alias}Token`, {});
    await registerOrg(alias, sim.instanceUrl);
  }
  worker = await startTestWorker(api);
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await sim?.close();
});

describe('child processes', () => {
  it('runs each task in its own child, starting with the pre-forked spare, and every child exits', async () => {
    const spare = await waitFor(async () => worker.host.launcher.sparePid, 5000, 'the spare child');
    expect(isAlive(spare)).toBe(true);

    // Three that can run at once (NORMAL has concurrency 2, CRITICAL takes the third): still one child each.
    const params = { steps: 12, stepMs: 100 };
    const tasks = [
      await submit({ type: 'DIAGNOSTIC', params }),
      await submit({ type: 'DIAGNOSTIC', params }),
      await submit({ type: 'DIAGNOSTIC', params, queue: 'CRITICAL' }),
    ];
    const livePids = (await Promise.all(tasks.map((task) => runningChild(task.id, 1200)))).map((child) => child.pid);

    const done = await Promise.all(tasks.map((task) => waitForEnd(task.id)));
    const resultPids = done.map((task) => {
      expect(task.status).toBe('SUCCEEDED');
      return task.result.pid as number;
    });
    expect(resultPids).toEqual(livePids);
    expect(new Set(resultPids).size).toBe(3);
    expect(resultPids).not.toContain(process.pid);
    // The first task got the spare forked before anything was submitted.
    expect(resultPids).toContain(spare);
    for (const pid of resultPids) expect(isAlive(pid), `child ${pid} still alive`).toBe(false);

    // A new spare replaced it: alive, never used by a task.
    const nextSpare = worker.host.launcher.sparePid;
    expect(nextSpare).toBeDefined();
    expect(resultPids).not.toContain(nextSpare);
    expect(isAlive(nextSpare!)).toBe(true);

    // The next task takes that spare, and the pid is recorded only while it runs.
    const single = await submit({ type: 'DIAGNOSTIC', params: { steps: 10, stepMs: 100 } });
    expect((await runningChild(single.id, 1000)).pid).toBe(nextSpare);
    const finished = await waitForEnd(single.id);
    expect(finished.result.pid).toBe(nextSpare);
    expect(isAlive(nextSpare!)).toBe(false);
    const row = await api.prisma.task.findUnique({ where: { id: rawId(single.id, 'Task') }, select: { childPid: true } });
    expect(row?.childPid).toBeNull();
    expect(worker.host.launcher.sparePid).not.toBe(nextSpare);
  });

  it('stops the child taken for a job that is not its task\'s current one, without running anything', async () => {
    // The worker takes a child before it claims the task (so the claim can record its pid). A stale job, here
    // one added by hand next to a task that waits for its own runAt, claims nothing: that child must exit
    // without a request, and the task must stay as it was.
    const waiting = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    expect(waiting.status).toBe('SCHEDULED');
    const uuid = rawId(waiting.id, 'Task');
    const spare = await waitFor(async () => worker.host.launcher.sparePid, 5000, 'the spare child');
    const stale = await api.queues.get('NORMAL').add('DIAGNOSTIC', { taskId: uuid }, { jobId: `${uuid}-stale` });
    await waitFor(async () => ((await stale.getState()) === 'completed' ? true : null), 10_000, 'the stale job to be processed');
    expect(await api.queues.get('NORMAL').getJob(stale.id!).then((job) => job?.returnvalue)).toEqual({ skipped: 'stale job' });
    // The spare it took is gone and was never handed a task.
    await waitFor(async () => (isAlive(spare) ? null : true), 5000, `child ${spare} to exit`);
    const after = await getTask(waiting.id);
    expect(after).toMatchObject({ status: 'SCHEDULED', attempts: 0, startedAt: null });
    expect(statuses(after)).toEqual([{ status: 'SCHEDULED' }]);
    expect((await api.prisma.task.findUnique({ where: { id: uuid }, select: { childPid: true } }))?.childPid).toBeNull();
    const cancelled = await api.gql(CANCEL, { id: waiting.id }, token);
    expect(cancelled.body.data.cancelTask.task.status).toBe('CANCELLED');
  });

  it.each(['QUEUED', 'SCHEDULED'])('gives a %s task whose job BullMQ already completed a new job when the worker reconciles', async (waitingStatus) => {
    // The state a lost retry leaves: the task waits as QUEUED, but its current job is settled, so nothing would
    // ever run it. Built here from a finished task's completed job.
    const finished = await waitForEnd((await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 } })).id);
    expect(finished.status).toBe('SUCCEEDED');
    const finishedRow = await api.prisma.task.findUnique({ where: { id: rawId(finished.id, 'Task') }, select: { jobId: true } });
    const queue = api.queues.get('NORMAL');
    expect(await (await queue.getJob(finishedRow!.jobId!))!.getState()).toBe('completed');

    const waiting = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    const uuid = rawId(waiting.id, 'Task');
    const ownJob = (await api.prisma.task.findUnique({ where: { id: uuid }, select: { jobId: true } }))!.jobId!;
    expect(await queue.remove(ownJob)).toBe(1);
    await api.prisma.task.update({ where: { id: uuid }, data: { status: waitingStatus as 'QUEUED' | 'SCHEDULED', runAt: waitingStatus === 'QUEUED' ? null : new Date(), jobId: finishedRow!.jobId } });

    const report = await worker.host.reconcile();
    expect(report.requeued).toContain(uuid);
    const done = await waitForEnd(waiting.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(events(done).some((e) => e.kind === 'LOG' && e.payload.message === 'Re-enqueued after its worker was lost')).toBe(true);
    // Reconciling again changes nothing: the task is settled.
    expect((await worker.host.reconcile()).requeued).not.toContain(uuid);
  });

  it('a run another worker took over (this one presumed dead) writes neither its progress nor its outcome into the new run', async () => {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 10, stepMs: 150 }, maxAttempts: 3 });
    const uuid = rawId(submitted.id, 'Task');
    await operationUnderWay(submitted.id);
    // What another worker's recovery and claim leave (this worker's heartbeat having expired meanwhile).
    const other = 'other-host:1:abcdef';
    const takenOver = await api.prisma.task.update({ where: { id: uuid }, data: { workerId: other, attempts: { increment: 1 } } });
    const seqAtTakeover = takenOver.lastEventSeq;
    await waitFor(async () => !worker.host.executor.running.has(uuid) || null, 15_000, "this worker's run to end");
    try {
      expect(await api.prisma.task.findUniqueOrThrow({ where: { id: uuid } })).toMatchObject({ status: 'RUNNING', workerId: other, attempts: takenOver.attempts, result: null });
      // At most a progress report already on its way at the takeover.
      const later = await api.prisma.taskEvent.findMany({ where: { taskId: uuid, seq: { gt: seqAtTakeover } } });
      expect(later.filter((e) => e.kind !== 'PROGRESS')).toEqual([]);
      expect(later.length).toBeLessThanOrEqual(1);
    } finally {
      await api.prisma.task.update({ where: { id: uuid }, data: { status: 'CANCELLED', finishedAt: new Date() } });
    }
  });

  it('recovers a RUNNING task that its live worker no longer runs (it could not record the outcome) when a worker reconciles', async () => {
    // The state a worker leaves when the write of a run's outcome fails: the task RUNNING on that worker, which is
    // alive but has let the run go, and the job settled. Built from a finished task's completed job, on this
    // (live) worker.
    const finished = await waitForEnd((await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 } })).id);
    const finishedRow = await api.prisma.task.findUnique({ where: { id: rawId(finished.id, 'Task') }, select: { jobId: true } });
    const queue = api.queues.get('NORMAL');
    const waiting = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, maxAttempts: 2, runAt: new Date(Date.now() + 60_000).toISOString() });
    const uuid = rawId(waiting.id, 'Task');
    const ownJob = (await api.prisma.task.findUnique({ where: { id: uuid }, select: { jobId: true } }))!.jobId!;
    expect(await queue.remove(ownJob)).toBe(1);
    await api.prisma.task.update({
      where: { id: uuid },
      data: { status: 'RUNNING', runAt: null, jobId: finishedRow!.jobId, workerId: worker.host.workerId, startedAt: new Date(), attempts: 1 },
    });

    const report = await worker.host.reconcile();
    expect(report.recovered).toContain(uuid);
    const done = await waitForEnd(waiting.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(statuses(done).find((s) => s.after === 'WORKER_LOST')).toBeTruthy();
  });

  it.each(['QUEUED', 'SCHEDULED'])('fails a %s task whose job BullMQ failed for good when the worker reconciles (its failed-job handler having failed)', async (waitingStatus) => {
    // The state a failed-job handler that could not reach Postgres leaves: the task waits as QUEUED on a job
    // BullMQ has failed, which nothing will run again. Built from a job the executor fails at once (its task
    // id is not a UUID, so no statement about it succeeds, and the handler finds no task to settle).
    const queue = api.queues.get('NORMAL');
    const broken = await queue.add('DIAGNOSTIC', { taskId: 'not-a-task' }, { jobId: `broken-${randomUUID()}`, attempts: 1 });
    await waitFor(async () => ((await broken.getState()) === 'failed' ? true : null), 10_000, 'the job to fail');
    const { failedReason } = (await queue.getJob(broken.id!))!;
    expect(failedReason).toBeTruthy();

    const waiting = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, runAt: new Date(Date.now() + 60_000).toISOString() });
    const uuid = rawId(waiting.id, 'Task');
    const ownJob = (await api.prisma.task.findUnique({ where: { id: uuid }, select: { jobId: true } }))!.jobId!;
    expect(await queue.remove(ownJob)).toBe(1);
    // A SCHEDULED task that became due is claimed straight from SCHEDULED, so its job can fail before it changes.
    await api.prisma.task.update({ where: { id: uuid }, data: { status: waitingStatus as 'QUEUED' | 'SCHEDULED', runAt: waitingStatus === 'QUEUED' ? null : new Date(), jobId: broken.id! } });

    // Right after the job failed, its handler may still be at work: left alone for a grace period.
    await waitFor(async () => ((await worker.host.reconcile()).failed.includes(uuid) ? true : null), 10_000, 'a reconcile to fail the task');
    const failed = await getTask(waiting.id);
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 0, error: { code: 'FAILED', message: failedReason } });
    expect(statuses(failed).at(-1)).toMatchObject({ status: 'FAILED', code: 'FAILED' });
    expect((await worker.host.reconcile()).failed).not.toContain(uuid);
  });

  it('records progress in order with gap-free seq, stores the result, counts one attempt', async () => {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 4, stepMs: 20 } });
    expect(submitted.status).toBe('QUEUED');
    const task = await waitForEnd(submitted.id);
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 1, progress: 100, error: null });
    expect(task.result).toEqual({ steps: 4, attempt: 1, pid: expect.any(Number) });
    const log = events(task);
    expect(log.map((e) => e.kind)).toEqual(['STATUS', 'STATUS', 'PROGRESS', 'PROGRESS', 'PROGRESS', 'PROGRESS', 'RESULT', 'STATUS']);
    expect(log[0]!.payload).toMatchObject({ status: 'QUEUED' });
    expect(log[1]!.payload).toMatchObject({ status: 'RUNNING', attempt: 1 });
    expect(log.filter((e) => e.kind === 'PROGRESS').map((e) => e.payload)).toEqual([
      { percent: 25, phase: 'step 1 of 4' },
      { percent: 50, phase: 'step 2 of 4' },
      { percent: 75, phase: 'step 3 of 4' },
      { percent: 100, phase: 'step 4 of 4' },
    ]);
    expect(log[6]!.payload).toEqual(task.result);
    expect(log[7]!.payload).toMatchObject({ status: 'SUCCEEDED' });
    // Timestamps follow seq.
    const times = log.map((e) => Date.parse(e.createdAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Date.parse(task.startedAt!)).toBeLessThanOrEqual(Date.parse(task.finishedAt!));
  });
});

describe('cancellation', () => {
  it('ignores control messages that are not the protocol\'s, and still hears a cancel over pub/sub after them', async () => {
    // The control channel is open to any Redis client: `null` there used to throw in the worker's message handler,
    // which ended the process and every task it ran.
    await worker.close();
    worker = await startTestWorker(api, { cancelPollMs: 600_000 }); // the cancel can only come over pub/sub
    try {
      for (const raw of ['null', '42', '"cancel"', '[]', '{"type":5}', 'not json']) await api.redis.publish(controlChannel(api.queuePrefix), raw);
      const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1000, stepMs: 100 } });
      await runningChild(submitted.id, 100_000);
      await operationUnderWay(submitted.id);
      expect((await api.gql(CANCEL, { id: submitted.id }, token)).body.data.cancelTask.__typename).toBe('CancelTaskSuccess');
      expect(await waitForEnd(submitted.id, 5000)).toMatchObject({ status: 'CANCELLED' });
    } finally {
      await worker.close();
      worker = await startTestWorker(api);
    }
  });

  it('cancels a running task: the operation stops, the child is gone, the task ends CANCELLED', async () => {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1000, stepMs: 100 } });
    const { pid, exit } = await runningChild(submitted.id, 100_000);
    await operationUnderWay(submitted.id); // so that the cancel reaches the operation, which then stops by itself
    const res = await api.gql(CANCEL, { id: submitted.id }, token);
    const cancel = res.body.data.cancelTask;
    expect(cancel.__typename).toBe('CancelTaskSuccess');
    // Still RUNNING at this point: cancellation is requested, the worker ends it.
    expect(cancel.task.status).toBe('RUNNING');
    expect(cancel.task.cancelRequestedAt).not.toBeNull();

    const task = await waitForEnd(submitted.id, 5000);
    expect(task.status).toBe('CANCELLED');
    expect(task.cancelRequestedAt).toBe(cancel.task.cancelRequestedAt);
    expect(task.error?.code).toBe('CANCELLED');
    expect(task.attempts).toBe(1);
    expect(task.result).toBeNull();
    expect(isAlive(pid)).toBe(false);
    // The operation honoured the abort and the child exited by itself: no SIGTERM was needed.
    expect(await exit).toEqual({ code: 0, signal: null });
    const log = events(task);
    expect(log.some((e) => e.kind === 'LOG' && /Cancellation requested/.test(e.payload.message))).toBe(true);
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'CANCELLED']);
    // Not retried.
    await sleep(300);
    expect((await getTask(submitted.id)).status).toBe('CANCELLED');
  });

  it('kills a child that ignores the abort request (SIGTERM/SIGKILL escalation) and ends CANCELLED', async () => {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1000, stepMs: 100, ignoreAbort: true } });
    const { pid, exit } = await runningChild(submitted.id, 100_000);
    const res = await api.gql(CANCEL, { id: submitted.id }, token);
    expect(res.body.data.cancelTask.__typename).toBe('CancelTaskSuccess');

    const task = await waitForEnd(submitted.id, 5000);
    expect(task.status).toBe('CANCELLED');
    expect(task.error?.code).toBe('CANCELLED');
    expect(isAlive(pid)).toBe(false);
    // The child kept going until it was killed (SIGTERM suffices: the child has no handler for it), one grace
    // period after the abort request at least.
    expect(await exit).toEqual({ code: null, signal: 'SIGTERM' });
    const took = Date.parse(task.finishedAt!) - Date.parse(task.cancelRequestedAt!);
    expect(took).toBeGreaterThanOrEqual(KILL_GRACE_MS);
    expect(took).toBeLessThan(5000);
    // It was still reporting progress after the abort request (it ignored it).
    const lateProgress = events(task).filter((e) => e.kind === 'PROGRESS' && Date.parse(e.createdAt) > Date.parse(task.cancelRequestedAt!) + 150);
    expect(lateProgress.length).toBeGreaterThan(0);
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'CANCELLED']);
  });
});

/** The task's second run was claimed only to be cancelled: its operation never ran (no progress after it). */
function expectSecondRunOnlyCancelled(task: TaskView): void {
  const secondRun = events(task).filter((e) => e.kind === 'STATUS' && e.payload.status === 'RUNNING')[1]!;
  expect(events(task).filter((e) => e.kind === 'PROGRESS' && e.seq > secondRun.seq)).toEqual([]);
}

describe('cancellation during a worker shutdown', () => {
  /**
   * A task whose child ignores aborts, running when its worker shuts down (the drain ends at once, the child runs
   * until SIGTERM), and cancelled after the shutdown abort; then a fresh worker. Returns the task's id.
   */
  async function cancelledDuringShutdown(maxAttempts: number): Promise<string> {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1000, stepMs: 100, ignoreAbort: true }, maxAttempts, retryBackoffMs: 100 });
    await runningChild(submitted.id, 100_000);
    // A shutdown abort that lands while the worker still prepares the run ends it at once, before the cancel below.
    await operationUnderWay(submitted.id);
    const closing = worker.close(50);
    await sleep(150);
    const res = await api.gql(CANCEL, { id: submitted.id }, token);
    expect(res.body.data.cancelTask).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'RUNNING', cancelRequestedAt: expect.any(String) } });
    await closing;
    worker = await startTestWorker(api);
    return submitted.id;
  }

  it('a run that would start after the drain time of a shutdown ran out is left to another worker, its attempt unspent', async () => {
    // The state of a job the worker was still sorting out (e.g. waiting to see whether another worker is alive)
    // when the drain time ran out. It used to be claimed and aborted at once: on its last attempt, the task
    // failed WORKER_SHUTDOWN without having run.
    worker.host.executor.abortAll();
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 2, stepMs: 10 }, maxAttempts: 1 });
    try {
      await sleep(1500); // the shutting-down worker takes the job and puts it back, again and again
      expect(await getTask(submitted.id)).toMatchObject({ status: 'QUEUED', attempts: 0 });
      // Put back (delayed, then due and taken again), never completed: a completed job would leave the task
      // waiting until a reconcile.
      const { jobId } = await api.prisma.task.findUniqueOrThrow({ where: { id: rawId(submitted.id, 'Task') } });
      expect(['delayed', 'waiting', 'prioritized', 'active']).toContain(await (await api.queues.get('NORMAL').getJob(jobId!))!.getState());
    } finally {
      await worker.close(0);
      worker = await startTestWorker(api);
    }
    const task = await waitForEnd(submitted.id, 10_000);
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
  });

  it('a cancel after the shutdown abort ends the task CANCELLED when its retry is claimed, without running it', async () => {
    // The shutdown came first, so this run ends as WORKER_SHUTDOWN and is requeued, with cancelRequestedAt set.
    const task = await waitForEnd(await cancelledDuringShutdown(2), 10_000);
    expect(task).toMatchObject({ status: 'CANCELLED', attempts: 2, error: { code: 'CANCELLED' } });
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'CANCELLED']);
    expect(statuses(task)[2]).toMatchObject({ after: 'WORKER_SHUTDOWN' });
    expectSecondRunOnlyCancelled(task);
  });

  it('a cancel after the shutdown abort of the last attempt ends the task CANCELLED, not FAILED with WORKER_SHUTDOWN', async () => {
    const task = await waitForEnd(await cancelledDuringShutdown(1), 10_000);
    expect(task).toMatchObject({ status: 'CANCELLED', attempts: 1, error: { code: 'CANCELLED' } });
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'CANCELLED']);
  });
});

describe('a cancel that misses the running child', () => {
  it('makes the retry of a run that failed meanwhile due at once, and it ends CANCELLED without running', async () => {
    // No cancellation poll, and the cancel is written to Postgres only: as if its pub/sub message had been
    // missed, or it had come as the run was being requeued.
    await worker.close();
    worker = await startTestWorker(api, { cancelPollMs: 600_000 });
    try {
      const failWith = { code: 'FLAKY', message: 'fails once', retryable: true };
      const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 800, failWith }, maxAttempts: 3, retryBackoffMs: 60_000 });
      await runningChild(submitted.id, 800);
      await api.prisma.task.update({ where: { id: rawId(submitted.id, 'Task') }, data: { cancelRequestedAt: new Date() } });

      // Without it, the retry would come after the 60 s backoff.
      const task = await waitForEnd(submitted.id, 10_000);
      expect(task).toMatchObject({ status: 'CANCELLED', attempts: 2, error: { code: 'CANCELLED' } });
      expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'CANCELLED']);
      expect(statuses(task)[2]).toMatchObject({ after: 'FLAKY' });
      expectSecondRunOnlyCancelled(task);
    } finally {
      await worker.close();
      worker = await startTestWorker(api);
    }
  });
});

describe('timeouts, retries and failures', () => {
  it('fails a run that exceeds timeoutMs with TIMEOUT and does not retry it', async () => {
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 100, stepMs: 100 }, timeoutMs: 300, maxAttempts: 3, retryBackoffMs: 0 });
    const { pid } = await runningChild(submitted.id, 300);
    const task = await waitForEnd(submitted.id, 5000);
    expect(task.status).toBe('FAILED');
    expect(task.error?.code).toBe('TIMEOUT');
    expect(task.error?.message).toContain('300 ms');
    expect(task.attempts).toBe(1);
    expect(isAlive(pid)).toBe(false);
    const took = Date.parse(task.finishedAt!) - Date.parse(task.startedAt!);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(5000);
    await sleep(500);
    const later = await getTask(submitted.id);
    expect(later.status).toBe('FAILED');
    expect(later.attempts).toBe(1);
    expect(statuses(later).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'FAILED']);
    expect(statuses(later).at(-1)).toMatchObject({ code: 'TIMEOUT' });
  });

  it("a timed-out run's own failure report does not replace TIMEOUT (only a deployment's DEPLOY_FAILED would)", async () => {
    // The child ignores the abort and reports DEPLOY_FAILED 400 ms in, before its SIGTERM (timeout + 500 ms grace).
    const failWith = { code: 'DEPLOY_FAILED', message: 'not a deployment', retryable: false };
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 400, ignoreAbort: true, failWith }, timeoutMs: 200, maxAttempts: 2, retryBackoffMs: 0 });
    const { exit } = await runningChild(submitted.id, 400);
    const task = await waitForEnd(submitted.id, 5000);
    expect(await exit).toEqual({ code: 0, signal: null }); // it did report, and exited by itself
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'TIMEOUT' } });
  });

  it('retries a retryable failure with exponential backoff, then succeeds', async () => {
    const submitted = await submitFailing({ code: 'FLAKY', message: 'flaky on purpose', retryable: true, failTimes: 2 }, 3, 200);
    const task = await waitForEnd(submitted.id);
    expect(task.status).toBe('SUCCEEDED');
    expect(task.attempts).toBe(3);
    expect(task.error).toBeNull();
    expect(task.result).toMatchObject({ attempt: 3 });
    expect(runEnds(submitted.id).map((entry) => [entry.attempt, entry.status])).toEqual([[1, 'QUEUED'], [2, 'QUEUED'], [3, 'SUCCEEDED']]);

    const log = events(task);
    const statusEvents = log.filter((e) => e.kind === 'STATUS');
    expect(statusEvents.map((e) => e.payload)).toEqual([
      { status: 'QUEUED' },
      { status: 'RUNNING', attempt: 1, worker: expect.any(String) },
      { status: 'QUEUED', retryInMs: 200, after: 'FLAKY', message: 'flaky on purpose' },
      { status: 'RUNNING', attempt: 2, worker: expect.any(String) },
      { status: 'QUEUED', retryInMs: 400, after: 'FLAKY', message: 'flaky on purpose' },
      { status: 'RUNNING', attempt: 3, worker: expect.any(String) },
      { status: 'SUCCEEDED' },
    ]);
    // Each retry started no earlier than its backoff after the failure.
    for (const index of [2, 4]) {
      const requeued = statusEvents[index]!;
      const rerun = statusEvents[index + 1]!;
      const gap = Date.parse(rerun.createdAt) - Date.parse(requeued.createdAt);
      expect(gap, `gap after ${requeued.payload.retryInMs} ms backoff`).toBeGreaterThanOrEqual(requeued.payload.retryInMs);
    }
  });

  it('retries a retryable code that says "stalled" like any other', async () => {
    // BullMQ's own "job stalled more than allowable limit" is final; a failure code that merely contains
    // "stalled" was taken for it, and the task failed while its retry was queued.
    const submitted = await submitFailing({ code: 'UPSTREAM_STALLED', message: 'stalled upstream', retryable: true, failTimes: 1 }, 2, 100);
    const task = await waitForEnd(submitted.id);
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2, error: null });
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'SUCCEEDED']);
  });

  it('fails with the operation\'s code once retries are exhausted', async () => {
    const submitted = await submitFailing({ code: 'ALWAYS_FLAKY', message: 'never works', retryable: true }, 2, 100);
    const task = await waitForEnd(submitted.id);
    expect(task.status).toBe('FAILED');
    expect(task.attempts).toBe(2);
    expect(task.error).toEqual({ code: 'ALWAYS_FLAKY', message: 'never works' });
    expect(statuses(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', 'FAILED']);
    // The worker's log has a line a run, with its code but not the operation's message.
    const ends = runEnds(submitted.id);
    expect(ends).toEqual([
      expect.objectContaining({ level: 30, type: 'DIAGNOSTIC', org: 'exec', attempt: 1, status: 'QUEUED', code: 'ALWAYS_FLAKY', durationMs: expect.any(Number) }),
      expect.objectContaining({ level: 30, attempt: 2, status: 'FAILED', code: 'ALWAYS_FLAKY' }),
    ]);
    expect(JSON.stringify(ends)).not.toContain('never works');
    await sleep(400);
    expect((await getTask(submitted.id)).attempts).toBe(2);
  });

  it('fails a non-retryable failure after one attempt', async () => {
    const submitted = await submitFailing({ code: 'BROKEN', message: 'broken for good', retryable: false }, 3, 0);
    const task = await waitForEnd(submitted.id);
    expect(task.status).toBe('FAILED');
    expect(task.attempts).toBe(1);
    expect(task.error).toEqual({ code: 'BROKEN', message: 'broken for good' });
    await sleep(300);
    const later = await getTask(submitted.id);
    expect(later.attempts).toBe(1);
    expect(statuses(later).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'FAILED']);
  });

  it('does not spend an attempt of a task it could not even load or claim (Postgres did not answer): the job looks again', async () => {
    const runAt = new Date(Date.now() + 1000);
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, runAt: runAt.toISOString(), maxAttempts: 1 });
    const logged = worker.logLines.length;
    await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Task" RENAME TO "Task_away"`);
    let away = true;
    try {
      await waitFor(
        async () => worker.logLines.slice(logged).some((line) => line.includes('could not start the task just now')) || null,
        10_000,
        'the worker to meet the missing table',
      );
      await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Task_away" RENAME TO "Task"`);
      away = false;
      const task = await waitForEnd(submitted.id, 10_000);
      expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
      expect(statuses(task).map((s) => s.status)).toEqual(['SCHEDULED', 'RUNNING', 'SUCCEEDED']);
    } finally {
      if (away) await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Task_away" RENAME TO "Task"`);
    }
  });

  it('retries a run whose credentials the built-in store could not read just then (Postgres), and fails at once on ones it can never open', async () => {
    const table = `"${api.schema}"."Secret"`;
    await api.prisma.$executeRawUnsafe(`ALTER TABLE ${table} RENAME TO "Secret_away"`); // what the worker's store reads: gone for now
    let renamed = true;
    try {
      const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0, readCredentials: true }, maxAttempts: 2, retryBackoffMs: 300 });
      await waitFor(async () => statusesSoFar(await getTask(submitted.id)).some((s) => s.after === 'CREDENTIALS_UNAVAILABLE') || null, 10_000, 'the first attempt to fail');
      await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Secret_away" RENAME TO "Secret"`);
      renamed = false;
      const task = await waitForEnd(submitted.id);
      expect(task.status).toBe('SUCCEEDED');
      expect(task.attempts).toBe(2);
      expect(statuses(task)[2]).toMatchObject({ status: 'QUEUED', after: 'CREDENTIALS_UNAVAILABLE', message: 'The secret store could not be read' });
    } finally {
      if (renamed) await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Secret_away" RENAME TO "Secret"`);
    }

    // A ciphertext altered in the database: no attempt will open it.
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'exec' } });
    const row = await api.prisma.secret.findUniqueOrThrow({ where: { name: org.secretRef } });
    const flipped = Buffer.from(row.ciphertext);
    flipped[0] = flipped[0]! ^ 0x01;
    await api.prisma.secret.update({ where: { name: org.secretRef }, data: { ciphertext: flipped } });
    try {
      const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0, readCredentials: true }, maxAttempts: 2, retryBackoffMs: 0 });
      const task = await waitForEnd(submitted.id);
      expect(task).toMatchObject({ status: 'FAILED', attempts: 1 });
      expect(task.error).toEqual({ code: 'CREDENTIALS_UNAVAILABLE', message: `Secret ${org.secretRef} cannot be decrypted: it was altered, or copied from another name` });
    } finally {
      await api.prisma.secret.update({ where: { name: org.secretRef }, data: { ciphertext: row.ciphertext } });
    }
  });
});

describe('per-org lock', () => {
  // DEPLOY and QUICK_DEPLOY take the org lock; QUICK_DEPLOY with a deployId needs no artifact. What the
  // operation then does does not matter here, only when it may start.
  it('queues QUICK_DEPLOY tasks behind the org lock in submission order; other orgs are not blocked', async () => {
    const orgs = await api.prisma.org.findMany({ where: { alias: { in: ['locked', 'free'] } } });
    const lockedOrg = orgs.find((org) => org.alias === 'locked')!;
    const lock = new OrgLock(api.redis, api.queuePrefix, 60_000, 200);
    const holder = { taskId: 'holder', workerId: 'test' };
    expect(await lock.tryAcquire(lockedOrg.id, holder, new Date(Date.now() - 60_000))).toEqual({ acquired: true });
    let held = true;
    try {
      const params = { deployId: '0Af000000000001AAA' };
      const options = { type: 'QUICK_DEPLOY', params, maxAttempts: 1, timeoutMs: 5000 };
      const a = await submit({ ...options, org: 'locked' });
      await sleep(20);
      const b = await submit({ ...options, org: 'locked' });

      const phaseA = 'waiting for the org lock: position 1, held by task holder';
      const phaseB = 'waiting for the org lock: position 2, held by task holder';
      const [waitingA, waitingB] = await waitFor(
        async () => {
          const both = await Promise.all([getTask(a.id), getTask(b.id)]);
          return both[0]!.phase === phaseA && both[1]!.phase === phaseB ? both : null;
        },
        5000,
        'both deploys to wait for the lock',
      );
      for (const [task, phase] of [
        [waitingA, phaseA],
        [waitingB, phaseB],
      ] as const) {
        expect(task.status).toBe('QUEUED');
        expect(task.attempts).toBe(0);
        expect(task.startedAt).toBeNull();
        expect(events(task).some((e) => e.kind === 'LOG' && e.payload.message === phase)).toBe(true);
      }

      // Another org's deploy runs (and ends) meanwhile.
      const other = await submit({ ...options, org: 'free' });
      const otherDone = await waitForEnd(other.id);
      expect(otherDone.attempts).toBe(1);
      expect(otherDone.startedAt).not.toBeNull();
      expect((await getTask(a.id)).status).toBe('QUEUED');
      expect((await getTask(b.id)).status).toBe('QUEUED');

      // Still waiting after several lock polls: the lock really holds them.
      await sleep(600);
      expect((await getTask(a.id)).status).toBe('QUEUED');
      expect((await getTask(b.id)).status).toBe('QUEUED');

      await lock.release(lockedOrg.id, holder);
      held = false;
      const [doneA, doneB] = await Promise.all([waitForEnd(a.id), waitForEnd(b.id)]);
      for (const task of [doneA, doneB]) {
        expect(task.attempts).toBe(1);
        // Same operation against the same kind of org: the same outcome as the unblocked deploy.
        expect(task.status).toBe(otherDone.status);
        expect(task.error?.code).toBe(otherDone.error?.code);
      }
      // A ran first, and B only once A had finished and released the lock.
      expect(Date.parse(doneA.startedAt!)).toBeLessThan(Date.parse(doneB.startedAt!));
      expect(Date.parse(doneA.finishedAt!)).toBeLessThanOrEqual(Date.parse(doneB.startedAt!));
      // The lock is free again.
      const after = { taskId: 'after', workerId: 'test' };
      expect(await lock.tryAcquire(lockedOrg.id, after, new Date())).toEqual({ acquired: true });
      await lock.release(lockedOrg.id, after);
    } finally {
      if (held) await lock.release(lockedOrg.id, holder);
    }
  });
});

describe('per-org lock after Redis lost it', () => {
  it('a holder renewing a lock that is gone takes it back, so the next deploy keeps waiting; it never takes over another holder', async () => {
    const lock = new OrgLock(api.redis, api.queuePrefix, 60_000, 200);
    const orgId = randomUUID();
    const running = { taskId: 'running', workerId: 'worker-a' };
    const next = { taskId: 'next', workerId: 'worker-a' };
    try {
      expect(await lock.tryAcquire(orgId, running, new Date())).toEqual({ acquired: true });
      await api.redis.del(`${api.queuePrefix}:orglock:${orgId}`); // what a Redis restarted empty leaves
      expect(await lock.renew(orgId, running)).toBe(true);
      expect(await lock.tryAcquire(orgId, next, new Date())).toEqual({ acquired: false, position: 1, holder: 'running' });
      expect(await lock.renew(orgId, next)).toBe(false);
      expect(await lock.tryAcquire(orgId, next, new Date())).toEqual({ acquired: false, position: 1, holder: 'running' });
    } finally {
      await lock.release(orgId, running);
    }
  });
});

describe('per-org lock of a run presumed lost', () => {
  it("a new run of the task takes its lock; the old run's late renewal and release leave the new run's lock alone", async () => {
    const lock = new OrgLock(api.redis, api.queuePrefix, 60_000, 200);
    const orgId = randomUUID();
    const lost = { taskId: 'deploy', workerId: 'worker-a' }; // its worker was cut off from Redis
    const retry = { taskId: 'deploy', workerId: 'worker-b' }; // the run that replaced it
    const waiting = { taskId: 'waiting', workerId: 'worker-b' };
    try {
      expect(await lock.tryAcquire(orgId, lost, new Date())).toEqual({ acquired: true });
      expect(await lock.tryAcquire(orgId, retry, new Date())).toEqual({ acquired: true });
      // The lost worker comes back: its renewal fails and its release frees nothing.
      expect(await lock.renew(orgId, lost)).toBe(false);
      await lock.release(orgId, lost);
      expect(await lock.tryAcquire(orgId, waiting, new Date())).toEqual({ acquired: false, position: 1, holder: 'deploy' });
      expect(await lock.renew(orgId, retry)).toBe(true);
      await lock.release(orgId, retry);
      expect(await lock.tryAcquire(orgId, waiting, new Date())).toEqual({ acquired: true });
    } finally {
      await lock.release(orgId, retry);
      await lock.release(orgId, waiting);
    }
  });
});

describe('delayed and recurring tasks', () => {
  it('keeps a task with a future runAt SCHEDULED, then runs it no earlier than runAt', async () => {
    const runAt = new Date(Date.now() + 1500);
    const submitted = await submit({ type: 'DIAGNOSTIC', params: { steps: 1, stepMs: 0 }, runAt: runAt.toISOString() });
    expect(submitted.status).toBe('SCHEDULED');
    expect(Date.parse(submitted.runAt!)).toBe(runAt.getTime());
    await sleep(500);
    expect((await getTask(submitted.id)).status).toBe('SCHEDULED');
    const task = await waitForEnd(submitted.id, 6000);
    expect(task.status).toBe('SUCCEEDED');
    expect(Date.parse(task.startedAt!)).toBeGreaterThanOrEqual(runAt.getTime());
    expect(Date.parse(task.startedAt!)).toBeLessThan(runAt.getTime() + 5000);
    expect(statuses(task).map((s) => s.status)).toEqual(['SCHEDULED', 'RUNNING', 'SUCCEEDED']);
  });

  it('fires a cron schedule into SCHEDULE tasks until it is removed', async () => {
    const res = await api.gql(SCHEDULE, { input: { type: 'DIAGNOSTIC', org: 'exec', params: { steps: 1, stepMs: 0 }, cron: '* * * * * *' } }, token);
    const created = res.body.data.scheduleTask;
    expect(created.__typename, JSON.stringify(created)).toBe('ScheduleTaskSuccess');
    expect(created.schedule).toMatchObject({ cron: '* * * * * *', timezone: 'UTC', type: 'DIAGNOSTIC' });
    const scheduleId = rawId(created.schedule.id, 'Schedule');

    const listed = await api.gql(`{ schedules(first: 10) { totalCount edges { node { id cron nextRunAt } } } }`, {}, token);
    expect(listed.body.data.schedules.totalCount).toBe(1);
    const node = listed.body.data.schedules.edges[0].node;
    expect(node.id).toBe(created.schedule.id);
    const nextRunAt = Date.parse(node.nextRunAt);
    expect(nextRunAt).toBeGreaterThan(Date.now() - 1000);
    expect(nextRunAt).toBeLessThanOrEqual(Date.now() + 1000);

    const SCHEDULED_TASKS = `{ tasks(first: 100, filter: { source: [SCHEDULE] }) { totalCount edges { node { id source requestedBy status type } } } }`;
    const fired = await waitFor(
      async () => {
        const r = await api.gql(SCHEDULED_TASKS, {}, token);
        const nodes = r.body.data.tasks.edges.map((e: any) => e.node);
        return nodes.filter((t: any) => t.status === 'SUCCEEDED').length >= 2 ? nodes : null;
      },
      15_000,
      'two scheduled tasks to run',
    );
    for (const task of fired) expect(task).toMatchObject({ source: 'SCHEDULE', requestedBy: `schedule:${scheduleId}`, type: 'DIAGNOSTIC' });
    // Each task's id is named after its firing's job (version 8 UUIDs), so a firing handed over again finds it.
    for (const task of fired) expect(rawId(task.id, 'Task')![14]).toBe('8');

    const removed = await api.gql(REMOVE_SCHEDULE, { id: created.schedule.id }, token);
    expect(removed.body.data.removeSchedule).toEqual({ __typename: 'RemoveScheduleSuccess', removed: { id: scheduleId } });
    const afterRemove = await api.gql(`{ schedules(first: 10) { totalCount } }`, {}, token);
    expect(afterRemove.body.data.schedules.totalCount).toBe(0);

    // A firing already in flight may still land; after that, nothing more for two firing periods.
    await sleep(1500);
    const settled = (await api.gql(SCHEDULED_TASKS, {}, token)).body.data.tasks.totalCount;
    await sleep(2100);
    expect((await api.gql(SCHEDULED_TASKS, {}, token)).body.data.tasks.totalCount).toBe(settled);
    expect(await api.queues.hasScheduler(scheduleId)).toBe(false);
  });

  it('a firing handed over again (its worker died before BullMQ recorded it done) finds its task instead of creating another', async () => {
    const res = await api.gql(SCHEDULE, { input: { type: 'DIAGNOSTIC', org: 'exec', params: { steps: 1, stepMs: 0 }, cron: '0 0 1 1 *' } }, token);
    const scheduleId = rawId(res.body.data.scheduleTask.schedule.id, 'Schedule')!;
    try {
      const firing = `repeat:${scheduleId}:1798761600000`;
      const first = await api.services.schedules.fire(scheduleId, firing);
      const again = await api.services.schedules.fire(scheduleId, firing);
      expect(first).not.toBeNull();
      expect(again?.id).toBe(first!.id);
      const nextYear = await api.services.schedules.fire(scheduleId, `repeat:${scheduleId}:1830297600000`);
      expect(nextYear?.id).not.toBe(first!.id);
      expect(await api.prisma.task.count({ where: { scheduleId } })).toBe(2);
    } finally {
      await api.gql(REMOVE_SCHEDULE, { id: res.body.data.scheduleTask.schedule.id }, token);
    }
  });

  it('tries a firing that failed (Postgres did not answer) again, so that it still creates its task', async () => {
    const res = await api.gql(SCHEDULE, { input: { type: 'DIAGNOSTIC', org: 'exec', params: { steps: 1, stepMs: 0 }, cron: '* * * * * *' } }, token);
    const scheduleId = rawId(res.body.data.scheduleTask.schedule.id, 'Schedule')!;
    let away = false;
    try {
      await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Schedule" RENAME TO "Schedule_away"`);
      away = true;
      const failed = await waitFor(
        async () => worker.logLines.map((line) => JSON.parse(line)).find((entry) => entry.msg === 'a schedule firing failed; trying again' && entry.scheduleId === scheduleId) ?? null,
        10_000,
        'a firing to fail',
      );
      expect(failed.attempt).toBe(1);
      await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Schedule_away" RENAME TO "Schedule"`);
      away = false;
      // The firing's own task (firings are idempotent by their job id), created when it was tried again.
      const firingTask = uuidFromName(`schedule-firing:${failed.firing}`);
      const task = await waitFor(async () => api.prisma.task.findUnique({ where: { id: firingTask } }), 10_000, 'the failed firing, tried again, to create its task');
      expect(task).toMatchObject({ scheduleId, source: 'SCHEDULE' });
    } finally {
      if (away) await api.prisma.$executeRawUnsafe(`ALTER TABLE "${api.schema}"."Schedule_away" RENAME TO "Schedule"`);
      await api.gql(REMOVE_SCHEDULE, { id: res.body.data.scheduleTask.schedule.id }, token);
    }
  });

  it('rewrites a scheduler an earlier release wrote (its firings tried once), keeping its next firing time', async () => {
    const res = await api.gql(SCHEDULE, { input: { type: 'DIAGNOSTIC', org: 'exec', params: {}, cron: '0 0 1 1 *' } }, token);
    const scheduleId = rawId(res.body.data.scheduleTask.schedule.id, 'Schedule')!;
    try {
      // What the release before wrote: the same scheduler, with a firing template without retries.
      await api.queues.schedules.upsertJobScheduler(
        scheduleId,
        { pattern: '0 0 1 1 *', tz: 'UTC' },
        { name: 'fire', data: { scheduleId }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } } },
      );
      const before = await api.queues.schedules.getJobScheduler(scheduleId);
      expect(await api.queues.hasCurrentScheduler(scheduleId)).toBe(false);
      const restored = await api.services.schedules.restoreSchedulers();
      expect(restored.failed).toEqual([]);
      expect(restored.restored).toBeGreaterThanOrEqual(1);
      const after = await api.queues.schedules.getJobScheduler(scheduleId);
      expect(after?.template?.opts).toMatchObject({ attempts: 8, backoff: { type: 'exponential', delay: 1000 } });
      expect(after?.next).toBe(before?.next);
      expect(await api.queues.hasCurrentScheduler(scheduleId)).toBe(true);
    } finally {
      await api.gql(REMOVE_SCHEDULE, { id: res.body.data.scheduleTask.schedule.id }, token);
    }
  });

  it('stores a pattern with its fields separated by single spaces, and knows day names (THU is no H)', async () => {
    const res = await api.gql(SCHEDULE, { input: { type: 'DIAGNOSTIC', org: 'exec', params: {}, cron: ' 0 9\n* *\tTHU ' } }, token);
    expect(res.body.data.scheduleTask.__typename, JSON.stringify(res.body)).toBe('ScheduleTaskSuccess');
    expect(res.body.data.scheduleTask.schedule.cron).toBe('0 9 * * THU');
    await api.gql(REMOVE_SCHEDULE, { id: res.body.data.scheduleTask.schedule.id }, token);
  });

  it('still shows nextRunAt of a schedule stored before today\'s checks (its pattern uses H)', async () => {
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'exec' } });
    const stored = await api.prisma.schedule.create({
      data: { type: 'DIAGNOSTIC', orgId: org.id, input: {}, cron: 'H 3 * * *', timezone: 'UTC', queue: 'NORMAL', priority: 50, maxAttempts: 1, backoffMs: 1000, createdBy: 'cli' },
    });
    try {
      const res = await api.gql(`{ schedules(first: 10) { edges { node { cron nextRunAt } } } }`, {}, token);
      expect(res.body.errors).toBeUndefined();
      const next = Date.parse(res.body.data.schedules.edges.find((e: any) => e.node.cron === 'H 3 * * *').node.nextRunAt);
      expect(next).toBeGreaterThan(Date.now());
      expect(new Date(next).getUTCHours()).toBe(3);
    } finally {
      await api.prisma.schedule.delete({ where: { id: stored.id } });
    }
  });

  it('refuses a pattern that fires more often than SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS (60 s by default)', async () => {
    // The interval as a production process gets it: loadEnv's default, not the harness's 1 s.
    const schedules = new ScheduleService(api.prisma, api.queues, api.services.tasks, loadEnv({}).SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS, new AuditService(api.prisma));
    const input = { type: 'DIAGNOSTIC' as const, org: 'exec', params: {} };
    for (const cron of ['* * * * * *', '*/30 * * * * *', '0,30 * * * * *']) {
      await expect(schedules.create(cliPrincipal, { ...input, cron }), cron).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        issues: [{ path: ['cron'], message: expect.stringMatching(/^fires every (1|30) s at times; schedules may fire at most every 60 s/) }],
      });
    }
    const everyMinute = await schedules.create(cliPrincipal, { ...input, cron: '* * * * *' });
    await schedules.remove(cliPrincipal, everyMinute.id);
    expect(await api.prisma.schedule.count()).toBe(0);
  });

  it('rejects an invalid cron pattern and an unknown time zone', async () => {
    const input = { type: 'DIAGNOSTIC', org: 'exec', params: {} };
    // The last ones name days no month has: they would never fire, and nextRunAt would have no answer.
    for (const cron of ['every minute', '61 * * * *', '* * * * * * *', 'H * * * *', '0 H/4 * * *', '5,H(0-29) * * * *', '0 0 31 4,6,9,11 *', '0 0 30 2 *']) {
      const res = await api.gql(SCHEDULE, { input: { ...input, cron } }, token);
      const result = res.body.data.scheduleTask;
      expect(result.__typename, cron).toBe('ValidationError');
      expect(result.code).toBe('VALIDATION_FAILED');
      expect(result.fieldErrors.map((e: any) => e.path)).toEqual([['cron']]);
    }
    const never = (await api.gql(SCHEDULE, { input: { ...input, cron: '0 0 31 4,6,9,11 *' } }, token)).body.data.scheduleTask;
    expect(never.fieldErrors).toEqual([{ path: ['cron'], message: 'never fires (no date matches every field)' }]);
    expect(await api.prisma.schedule.count()).toBe(0);
    const res = await api.gql(SCHEDULE, { input: { ...input, cron: '0 * * * *', timezone: 'Mars/Olympus_Mons' } }, token);
    const result = res.body.data.scheduleTask;
    expect(result.__typename).toBe('ValidationError');
    expect(result.fieldErrors.map((e: any) => e.path)).toEqual([['timezone']]);
    // Nothing was created.
    const listed = await api.gql(`{ schedules(first: 10) { totalCount } }`, {}, token);
    expect(listed.body.data.schedules.totalCount).toBe(0);
  });
});
