// `switchyard worker`: consumes the task queues, each task in its own child process. `switchyard start`
// runs one of these next to the API for single-machine installs.
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import type { Env } from '../env.js';
import type { Runtime } from '../runtime.js';
import { parseConcurrency, parseQueues, WorkerConfigError } from '../workers/worker-config.js';
import { prepareChildSnapshot, type ChildSnapshot } from '../workers/child-snapshot/child-snapshot.js';
import { runAsIds } from '../run-as.js';
import { childEntryPoint, childEnvironment } from '../workers/child-launcher.js';
import { WorkerHost } from '../workers/worker-host.js';
import { UsageError } from './usage-error.js';

export function workerOptionsFromArgs(env: Env, argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { queues: { type: 'string' }, concurrency: { type: 'string' } },
    strict: true,
  });
  try {
    return {
      queues: parseQueues(values.queues ?? env.SWITCHYARD_WORKER_QUEUES),
      concurrency: parseConcurrency(values.concurrency ?? env.SWITCHYARD_WORKER_CONCURRENCY),
    };
  } catch (error) {
    if (error instanceof WorkerConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * `snapshot`: the child snapshot made before the process switched users (undefined: the worker makes or finds
 * one itself; null: making it failed, so children start without one rather than from one their user could write).
 */
export function createWorkerHost(runtime: Runtime, logger: Logger, selection: ReturnType<typeof workerOptionsFromArgs>, snapshot?: ChildSnapshot | null): WorkerHost {
  const { env, services } = runtime;
  return new WorkerHost(
    { prisma: runtime.prisma, journal: services.journal, secrets: services.secrets, queues: services.queues, schedules: services.schedules, artifacts: services.artifacts, notifications: services.notifications, logger },
    {
      redisUrl: env.REDIS_URL,
      prefix: env.SWITCHYARD_QUEUE_PREFIX,
      queues: selection.queues,
      concurrency: selection.concurrency,
      lockDurationMs: env.SWITCHYARD_JOB_LOCK_MS,
      stalledIntervalMs: env.SWITCHYARD_JOB_LOCK_MS,
      killGraceMs: env.SWITCHYARD_KILL_GRACE_MS,
      keepSpareChild: env.SWITCHYARD_SPARE_CHILD,
      childSnapshot: !env.SWITCHYARD_CHILD_SNAPSHOT || snapshot === null ? false : snapshot ? { prepared: snapshot } : childSnapshotDirectory(env),
      cancelPollMs: env.SWITCHYARD_CANCEL_POLL_MS,
      orgLockLeaseMs: env.SWITCHYARD_ORG_LOCK_LEASE_MS,
      orgLockPollMs: env.SWITCHYARD_ORG_LOCK_POLL_MS,
      heartbeatMs: env.SWITCHYARD_HEARTBEAT_MS,
      reconcileIntervalMs: env.SWITCHYARD_RECONCILE_INTERVAL_MS,
      artifactRetentionDays: env.SWITCHYARD_ARTIFACT_RETENTION_DAYS,
    },
  );
}

const childSnapshotDirectory = (env: Env) => (env.SWITCHYARD_CHILD_SNAPSHOT_DIR ? { directory: env.SWITCHYARD_CHILD_SNAPSHOT_DIR } : {});

/**
 * Makes (or finds) the child snapshot now, for a process about to switch users (SWITCHYARD_RUN_AS): as root, in a
 * directory only root may write, so the children cannot change what later children run. Null, with a warning,
 * when that fails.
 */
export async function prepareChildSnapshotBeforeSwitch(env: Env, logger: Logger, runAsSpec: string): Promise<ChildSnapshot | null> {
  try {
    const childUser = process.getuid?.() === 0 ? runAsIds(runAsSpec) : undefined; // not root: runAs fails or does nothing
    const snapshot = await prepareChildSnapshot({ entry: childEntryPoint(), env: childEnvironment(), ...childSnapshotDirectory(env), ...(childUser ? { childUser } : {}) });
    logger.info({ snapshot: snapshot.blob }, 'made the child snapshot before switching users');
    return snapshot;
  } catch (error) {
    logger.warn({ reason: error instanceof Error ? error.message : String(error) }, 'task children start without a snapshot');
    return null;
  }
}
