// A real Switchyard worker bound to a TestApi: same Postgres schema, same BullMQ prefix, same secret store,
// forking real child processes (from dist/, so run `npm run build` first; `npm test` does).
import type { TaskQueue } from '../../src/generated/prisma/enums.js';
import { WorkerHost, type WorkerHostOptions } from '../../src/workers/worker-host.js';
import { captureLogger } from './capture-logger.js';
import type { TestApi } from './harness.js';

export interface TestWorker {
  host: WorkerHost;
  logLines: string[];
  close(drainMs?: number): Promise<void>;
}

export async function startTestWorker(api: TestApi, options: Partial<WorkerHostOptions> = {}): Promise<TestWorker> {
  const { logger, lines } = captureLogger();
  const queues: TaskQueue[] = ['CRITICAL', 'NORMAL', 'BATCH'];
  const host = new WorkerHost(
    { prisma: api.prisma, journal: api.services.journal, secrets: api.services.secrets, queues: api.queues, schedules: api.services.schedules, artifacts: api.services.artifacts, notifications: api.services.notifications, logger },
    {
      redisUrl: api.redisUrl,
      prefix: api.queuePrefix,
      queues,
      concurrency: { CRITICAL: 2, NORMAL: 2, BATCH: 1 },
      lockDurationMs: 5000,
      stalledIntervalMs: 2000,
      killGraceMs: 500,
      keepSpareChild: true,
      childSnapshot: {},
      cancelPollMs: 500,
      orgLockLeaseMs: 5000,
      orgLockPollMs: 200,
      heartbeatMs: 500,
      reconcileIntervalMs: 60_000,
      artifactRetentionDays: 0,
      ...options,
    },
  );
  await host.start();
  // Children start from the child snapshot, as in production, once it is ready (made once, then kept).
  await host.launcher.snapshotSettled;
  return { host, logLines: lines, close: (drainMs = 5000) => host.close(drainMs) };
}

/** Polls until `check` returns a truthy value or the time is up. */
export async function waitFor<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The statuses a task ends in. */
export const FINAL_STATUSES: readonly string[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/**
 * Polls a task, read by `read(id)` as the test needs it (a GraphQL selection, a Prisma row…), until its status
 * is one of `statuses` (by default a final one), and returns it.
 */
export async function waitForTaskStatus<T extends { status: string }>(
  read: (id: string) => Promise<T | null | undefined>,
  id: string,
  statuses: readonly string[] = FINAL_STATUSES,
  timeoutMs = 15_000,
): Promise<T> {
  return waitFor(
    async () => {
      const task = await read(id);
      return task && statuses.includes(task.status) ? task : null;
    },
    timeoutMs,
    `task ${id} to be ${statuses.join('/')}`,
  );
}
