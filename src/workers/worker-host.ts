// A Switchyard worker: BullMQ workers for the chosen queues, each job run by the TaskExecutor in a fresh
// child process. Listens for cancellation requests (Redis pub/sub, with a database poll as a safety net),
// settles jobs BullMQ gave up on (stalled too often), makes a retry due at once when a cancel came as its run
// was requeued, prunes expired artifacts, and drains on shutdown.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/prisma.js';
import type { ScheduleService } from '../domain/tasks/schedule-service.js';
import type { TaskJournal } from '../domain/tasks/task-journal.js';
import { TaskEffects } from '../domain/tasks/task-effects.js';
import { lastFailure, TaskLifecycle } from '../domain/tasks/task-lifecycle.js';
import type { ArtifactService, PruneResult } from '../domain/artifacts/artifact-service.js';
import type { NotificationService } from '../domain/notifications/notification-service.js';
import type { WorkerStats } from '../domain/resources/resource-service.js';
import { controlChannel, parseControlMessage } from '../events/task-event-bus.js';
import type { TaskQueue } from '../generated/prisma/enums.js';
import { delayJob, timesDelayed } from '../queues/delay-job.js';
import {
  notificationsQueueName,
  queueNames,
  schedulesQueueName,
  type NotificationJobData,
  type ScheduleJobData,
  type TaskJobData,
  type TaskQueues,
} from '../queues/task-queues.js';
import type { SecretStore } from '../secrets/secret-store.js';
import { BuiltinSecretStore } from '../secrets/builtin-store.js';
import { ChildLauncher, type ChildLauncherOptions } from './child-launcher.js';
import { OrgLock } from './org-lock.js';
import { ProcessSampler } from './process-stats.js';
import { reconcileTasks, type ReconcileReport } from './reconciler.js';
import { SubscriberSlots } from './subscriber-slots.js';
import { TaskExecutor } from './task-executor.js';

export interface WorkerHostOptions {
  redisUrl: string;
  prefix: string;
  queues: TaskQueue[];
  concurrency: Partial<Record<TaskQueue, number>>;
  /** BullMQ lock duration; a worker that stops renewing its job lock for this long is considered dead. */
  lockDurationMs: number;
  /** How often BullMQ looks for stalled jobs. */
  stalledIntervalMs: number;
  killGraceMs: number;
  keepSpareChild: boolean;
  /** Start task children from a child snapshot (child-snapshot/; ChildLauncherOptions.snapshot). */
  childSnapshot: NonNullable<ChildLauncherOptions['snapshot']>;
  cancelPollMs: number;
  orgLockLeaseMs: number;
  orgLockPollMs: number;
  /** How often this worker announces itself; it counts as gone after three missed beats. */
  heartbeatMs: number;
  /** How often the reconciler runs after the one at start (artifact pruning runs after it). */
  reconcileIntervalMs: number;
  /** Artifacts not used for this many days that nothing still names are deleted (ArtifactService.prune); 0 keeps them. */
  artifactRetentionDays: number;
}

export interface WorkerHostDeps {
  prisma: PrismaClient;
  journal: TaskJournal;
  secrets: SecretStore;
  queues: TaskQueues;
  schedules: ScheduleService;
  artifacts: ArtifactService;
  notifications: NotificationService;
  logger: Logger;
}

/**
 * BullMQ's failedReason for a job that stalled more often than maxStalledCount (moveStalledJobsToWait.lua). Compared
 * whole: a retryable failure's reason is its task error code, which may contain "stalled" too.
 */
const stalledTooOften = 'job stalled more than allowable limit';
/** How often a worker reads the whole artifact directory for files no record names (and first at start). */
const fileSweepIntervalMs = 24 * 3_600_000;
/** How often a worker prunes artifact records: retention is counted in days, and uses are recorded to the hour. */
const pruneIntervalMs = 3_600_000;
/** …and how soon it tries again after a sweep failed (e.g. the directory could not be read). */
const fileSweepRetryMs = 3_600_000;
/** How long after a task ended its notifications count as missed, when they still are not queued. */
const missedNotificationGraceMs = 60_000;
/** Notifications a worker sends at once, and how many of them may go to one subscriber (across all workers). */
const notificationConcurrency = 4;
const notificationsPerSubscriber = 2;
/** A hold on a subscriber's slot lapses after this (a worker died mid-request): longer than any attempt takes. */
const notificationSlotHoldMs = 60_000;
/**
 * How long a notification whose subscriber has no slot free waits before it tries again, doubling each time it
 * finds none up to the maximum (plus up to as much again, at random).
 */
const notificationSlotWaitMs = 1000;
const notificationSlotMaxWaitMs = 8000;

export function workerKey(prefix: string, workerId: string): string {
  return `${prefix}:worker:${workerId}`;
}

export class WorkerHost {
  /**
   * host:pid:nonce. The nonce tells apart two lives of a worker with the same host name and pid (a container
   * restarted in place runs node as pid 1 again): the new one's heartbeat must not vouch for the old one's tasks.
   */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly executor: TaskExecutor;
  private readonly workers: Worker[] = [];
  private readonly connection: Redis;
  private readonly subscriber: Redis;
  /** Forks the task children; exposed read-only so tests can observe the spare child. */
  readonly launcher: ChildLauncher;
  private readonly lifecycle: TaskLifecycle;
  private cancelPoll: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The heartbeat being written now, if one is. */
  private beating: Promise<void> | null = null;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly subscriberSlots: SubscriberSlots;
  private readonly startedAt = new Date().toISOString();
  private readonly sampler = new ProcessSampler();
  /** When pruneArtifacts next sweeps the artifact directory for unrecorded files (at start, then daily). */
  private nextFileSweepAt = 0;
  /** When the reconciler's timer next runs pruneArtifacts (at start, then hourly). */
  private nextPruneAt = 0;

  constructor(
    private readonly deps: WorkerHostDeps,
    private readonly options: WorkerHostOptions,
  ) {
    // BullMQ workers need a connection that retries forever (maxRetriesPerRequest: null).
    this.connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, connectionName: 'switchyard-worker' });
    this.subscriber = new Redis(options.redisUrl, { maxRetriesPerRequest: null, connectionName: 'switchyard-worker-control' });
    for (const redis of [this.connection, this.subscriber]) redis.on('error', () => undefined); // reconnects by itself
    this.subscriberSlots = new SubscriberSlots(this.connection, options.prefix, notificationsPerSubscriber, notificationSlotHoldMs);
    this.launcher = new ChildLauncher({
      keepSpare: options.keepSpareChild,
      snapshot: options.childSnapshot,
      onSnapshot: (event) =>
        event.ready
          ? deps.logger.info({ snapshot: event.blob }, 'task children start from a snapshot with jsforce loaded')
          : deps.logger.warn({ reason: event.reason }, 'task children start without a snapshot'),
    });
    this.lifecycle = new TaskLifecycle(deps.prisma, deps.journal);
    const secrets = deps.secrets;
    this.executor = new TaskExecutor(
      {
        lifecycle: this.lifecycle,
        effects: new TaskEffects(deps.prisma, deps.artifacts),
        secrets,
        redeemIpcGrant: secrets instanceof BuiltinSecretStore ? (token) => secrets.redeem(token) : null,
        launcher: this.launcher,
        orgLock: new OrgLock(this.connection, options.prefix, options.orgLockLeaseMs, options.orgLockPollMs),
        isRunningTask: (workerId, taskId) => this.isRunningTask(workerId, taskId),
        workerGraceMs: this.workerGraceMs,
        logger: deps.logger,
      },
      { workerId: this.workerId, killGraceMs: options.killGraceMs, grantTtlSeconds: 60, lockPollMs: options.orgLockPollMs },
    );
  }

  async start(): Promise<void> {
    await this.beat();
    this.heartbeat = setInterval(() => {
      this.beating ??= this.beat()
        .catch(() => undefined)
        .finally(() => (this.beating = null));
    }, this.options.heartbeatMs);
    await this.reconcile();
    void this.pruneArtifactsWhenDue();
    this.reconcileTimer = setInterval(
      () => void this.reconcile().then(() => this.pruneArtifactsWhenDue(), () => undefined),
      this.options.reconcileIntervalMs,
    );
    await this.subscriber.subscribe(controlChannel(this.options.prefix));
    this.subscriber.on('message', (_channel, raw: string) => this.onControl(raw));
    for (const queue of this.options.queues) {
      const worker = new Worker<TaskJobData>(queueNames[queue], (job, token) => this.executor.process(job, token), {
        connection: this.connection,
        prefix: this.options.prefix,
        concurrency: this.options.concurrency[queue] ?? 1,
        lockDuration: this.options.lockDurationMs,
        stalledInterval: this.options.stalledIntervalMs,
        maxStalledCount: 1,
        autorun: true,
      });
      worker.on('failed', (job, error) =>
        // Nobody awaits an event listener: a failure here (Postgres unreachable just then) must not end the worker.
        void this.onJobFailed(job as Job<TaskJobData> | undefined, error).catch((failure: unknown) =>
          this.deps.logger.error({ err: failure, jobId: job?.id }, 'settling the task of a failed job failed'),
        ),
      );
      worker.on('error', (error) => this.deps.logger.warn({ err: error.message, queue }, 'worker error'));
      this.workers.push(worker);
    }
    // Every worker also turns schedule firings into tasks; BullMQ hands each firing to exactly one of them.
    const firings = new Worker<ScheduleJobData>(schedulesQueueName, async (job) => ({ taskId: (await this.deps.schedules.fire(job.data.scheduleId, job.id))?.id ?? null }), {
      connection: this.connection,
      prefix: this.options.prefix,
      concurrency: 1,
    });
    firings.on('error', (error) => this.deps.logger.warn({ err: error.message }, 'schedule worker error'));
    firings.on('failed', (job, error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1);
      const entry = { err: error.message, scheduleId: job.data.scheduleId, firing: job.id, attempt: job.attemptsMade };
      if (final) this.deps.logger.error(entry, 'a schedule firing failed for good: it created no task');
      else this.deps.logger.warn(entry, 'a schedule firing failed; trying again');
    });
    this.workers.push(firings);
    // …and delivers outbound notifications (HTTP only, no child process: no credentials are involved).
    const notifications = new Worker<NotificationJobData>(notificationsQueueName, (job, token) => this.deliverNotification(job, token), {
      connection: this.connection,
      prefix: this.options.prefix,
      concurrency: notificationConcurrency,
    });
    notifications.on('error', (error) => this.deps.logger.warn({ err: error.message }, 'notification worker error'));
    notifications.on('failed', (job, error) => {
      // Each attempt is recorded on the subscriber (attempts); the last one that fails is also worth a log line.
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        this.deps.logger.warn({ err: error.message, subscriberId: job.data.subscriberId, notificationId: job.data.notificationId, event: job.data.event }, 'a notification was given up after its last attempt');
      }
    });
    this.workers.push(notifications);
    this.cancelPoll = setInterval(() => void this.pollCancellations(), this.options.cancelPollMs);
    this.deps.logger.info({ workerId: this.workerId, queues: this.options.queues, concurrency: this.options.concurrency }, 'worker started');
  }

  /**
   * One delivery attempt, when the subscriber has a slot free. Otherwise the notification waits a moment, without
   * spending an attempt, and the worker's slot goes to another subscriber's.
   */
  private async deliverNotification(job: Job<NotificationJobData>, token: string | undefined): Promise<void> {
    const { subscriberId, notificationId } = job.data;
    if (!(await this.subscriberSlots.acquire(subscriberId, notificationId))) {
      // Longer each time it finds no slot (a subscriber that stays slow is asked less often), with jitter.
      const wait = Math.min(notificationSlotMaxWaitMs, notificationSlotWaitMs * 2 ** Math.min(timesDelayed(job), 10));
      return delayJob(job, token, wait + Math.floor(Math.random() * wait));
    }
    try {
      await this.deps.notifications.deliver(job.data, job.attemptsMade + 1);
    } finally {
      await this.subscriberSlots.release(subscriberId, notificationId).catch(() => undefined); // else it lapses
    }
  }

  /** Stops taking jobs, lets running ones finish within `drainMs`, then aborts the rest (they are retried). */
  async close(drainMs: number): Promise<void> {
    clearInterval(this.cancelPoll);
    clearInterval(this.reconcileTimer);
    const drained = Promise.all(this.workers.map((worker) => worker.close()));
    const timer = setTimeout(() => this.executor.abortAll(), drainMs);
    await drained;
    clearTimeout(timer);
    await this.launcher.close();
    clearInterval(this.heartbeat);
    // A beat under way (it reads /proc first) would otherwise write the key again after it is deleted, and the
    // worker would show as live for three more beats after it is gone.
    await this.beating;
    await this.connection.del(workerKey(this.options.prefix, this.workerId)).catch(() => undefined);
    this.subscriber.disconnect();
    await this.connection.quit().catch(() => this.connection.disconnect());
  }

  async reconcile(): Promise<ReconcileReport> {
    // Schedules and tasks apart: a failure restoring schedulers must not keep lost tasks from being recovered.
    const restored = await this.deps.schedules.restoreSchedulers().catch((error: unknown) => {
      this.deps.logger.error({ err: error }, 'restoring schedules missing from Redis failed');
      return { restored: 0, failed: [] };
    });
    if (restored.restored > 0) this.deps.logger.warn({ restored: restored.restored }, 'restored schedules missing from Redis, or written by an earlier release');
    if (restored.failed.length > 0) this.deps.logger.error({ failed: restored.failed }, 'schedules could not be restored in Redis (their cron or timezone no longer parses?)');
    try {
      return await reconcileTasks({
        prisma: this.deps.prisma,
        queues: this.deps.queues,
        lifecycle: this.lifecycle,
        isRunningTask: (workerId, taskId) => this.isRunningTask(workerId, taskId),
        workerGraceMs: this.workerGraceMs,
        logger: this.deps.logger,
      });
    } finally {
      // Apart from the tasks too: a pass that failed on them still sends what is missed.
      await this.sendMissedNotifications();
    }
  }

  /**
   * Queues the notifications of tasks whose settler could not (Redis unavailable just then, or the process died
   * after the commit). Only of tasks that ended a while ago: a settler queues them right after its commit.
   */
  private async sendMissedNotifications(): Promise<void> {
    const endedBefore = new Date(Date.now() - missedNotificationGraceMs);
    const sent = await this.deps.notifications.sendMissed(endedBefore).catch((error: unknown) => {
      this.deps.logger.error({ err: error }, 'queueing the notifications of ended tasks that were not queued failed; the next reconciliation tries again');
      return 0;
    });
    if (sent > 0) this.deps.logger.warn({ tasks: sent }, 'queued the notifications of tasks that ended without them');
  }

  /**
   * Whether the worker's heartbeat is there and lists the task among its running ones. A live worker that does
   * not (it could not record a run's outcome, say) will not settle the task: it is left to recovery.
   */
  private async isRunningTask(workerId: string, taskId: string): Promise<boolean> {
    const raw = await this.connection.get(workerKey(this.options.prefix, workerId));
    if (raw === null) return false;
    try {
      const { children } = JSON.parse(raw) as Partial<Pick<WorkerStats, 'children'>>;
      return Array.isArray(children) && children.some((child) => child.taskId === taskId);
    } catch {
      return true; // not a heartbeat this code wrote: assume it runs the task rather than run it twice
    }
  }

  /** A little more than one heartbeat interval: between the two looks at a heartbeat that seems missing. */
  private get workerGraceMs(): number {
    return Math.round(this.options.heartbeatMs * 1.5);
  }

  private async pruneArtifactsWhenDue(): Promise<void> {
    if (Date.now() < this.nextPruneAt) return;
    this.nextPruneAt = Date.now() + pruneIntervalMs;
    await this.pruneArtifacts();
  }

  /**
   * Deletes expired artifacts nothing uses any more (ArtifactService.prune), and once a day also sweeps the
   * directory for files no record names (pruneFiles); null when retention is off.
   */
  async pruneArtifacts(): Promise<PruneResult | null> {
    const days = this.options.artifactRetentionDays;
    const { logger, artifacts } = this.deps;
    // Every artifact is kept with retention off, but not the leftovers of interrupted writes.
    if (days <= 0) {
      await this.sweepFilesWhenDue(() => artifacts.pruneAbandonedWrites());
      return null;
    }
    const cutoff = new Date(Date.now() - days * 86_400_000);
    let pruned: PruneResult;
    try {
      pruned = await artifacts.prune(cutoff);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'pruning expired artifacts failed');
      return null;
    }
    const swept = await this.sweepFilesWhenDue(() => artifacts.pruneFiles(cutoff));
    if (swept) {
      pruned.files += swept.files;
      pruned.failures += swept.failures;
      pruned.firstFailure ??= swept.firstFailure;
    }
    if (pruned.artifacts > 0 || pruned.files > 0) logger.info({ artifacts: pruned.artifacts, files: pruned.files, retentionDays: days }, 'deleted expired artifacts');
    if (pruned.failures > 0) logger.warn({ failures: pruned.failures, first: pruned.firstFailure, dir: artifacts.dir }, 'some expired artifact files could not be removed');
    return pruned;
  }

  /** Runs a sweep of the artifact directory once it is due (at start, then daily; an hour after a failed one). */
  private async sweepFilesWhenDue(sweep: () => Promise<Omit<PruneResult, 'artifacts'>>): Promise<Omit<PruneResult, 'artifacts'> | null> {
    if (Date.now() < this.nextFileSweepAt) return null;
    try {
      const swept = await sweep();
      this.nextFileSweepAt = Date.now() + fileSweepIntervalMs;
      return swept;
    } catch (error) {
      this.nextFileSweepAt = Date.now() + fileSweepRetryMs;
      this.deps.logger.warn({ err: (error as Error).message, dir: this.deps.artifacts.dir }, 'sweeping the artifact directory failed');
      return null;
    }
  }

  /** Announces this worker (and what it is running) for three beats; resource views read these keys. */
  private async beat(): Promise<void> {
    const children = await Promise.all(
      [...this.executor.running.entries()].map(async ([taskId, session]) => ({
        taskId,
        pid: session.pid ?? null,
        ...(session.pid ? await this.sampler.sample(session.pid) : { cpuPercent: null, rssBytes: null }),
      })),
    );
    this.sampler.retain(new Set(children.flatMap((child) => (child.pid ? [child.pid] : []))));
    const value = JSON.stringify({
      workerId: this.workerId,
      host: hostname(),
      pid: process.pid,
      queues: this.options.queues,
      concurrency: this.options.concurrency,
      busy: children.length,
      children,
      startedAt: this.startedAt,
      at: new Date().toISOString(),
    } satisfies WorkerStats);
    await this.connection.set(workerKey(this.options.prefix, this.workerId), value, 'PX', this.options.heartbeatMs * 3);
  }

  private onControl(raw: string): void {
    const message = parseControlMessage(raw);
    if (!message) return;
    if (message.type === 'cancel') this.executor.running.get(message.taskId)?.abort('cancelled');
    // A worker process runs no API: it drops its cached subscriber list itself.
    else if (message.type === 'notification-subscribers-changed') this.deps.notifications.forgetSubscribers();
  }

  /** The pub/sub message can be missed (reconnect); the database request cannot. */
  private async pollCancellations(): Promise<void> {
    const ids = [...this.executor.running.keys()];
    const requested = await this.lifecycle.cancelRequested(ids).catch(() => []);
    for (const id of requested) this.executor.running.get(id)?.abort('cancelled');
  }

  /**
   * A job failed: BullMQ gave up on it without our processor settling its task (e.g. it stalled too often), or
   * it was requeued for a retry that a cancel makes pointless to wait for.
   */
  private async onJobFailed(job: Job<TaskJobData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const task = await this.lifecycle.load(job.data.taskId).catch(() => null);
    if (!task || task.jobId !== job.id) return;
    const finalFailure = job.attemptsMade >= (job.opts.attempts ?? 1) || error.message === stalledTooOften;
    if (!finalFailure) {
      // Requeued for a retry, and cancelled since this run started: the cancel found the task RUNNING (and its
      // child gone) or found no delayed job to make due (TaskService.cancel), so it would wait out the backoff.
      // Make it due now: the retry's claim sees the cancel. (A run that only cancelled keeps its backoff: its
      // cancel came before it started.)
      if (task.status === 'QUEUED' && task.cancelRequestedAt && task.startedAt && task.cancelRequestedAt > task.startedAt) {
        await this.deps.queues.promote(task.queue, job.id!).catch(() => false);
      }
      return;
    }
    if (task.status === 'RUNNING') {
      await this.lifecycle.fail(task.id, { code: 'WORKER_LOST', message: 'The worker running this task stopped unexpectedly' }, ['RUNNING'], { jobId: job.id! });
    } else if (task.status === 'QUEUED' || task.status === 'SCHEDULED') {
      // Failed for good before a run was claimed (a SCHEDULED task's first run is claimed straight from SCHEDULED).
      await this.lifecycle.fail(task.id, lastFailure(task, error.message), ['QUEUED', 'SCHEDULED'], { jobId: job.id! });
    }
  }
}
