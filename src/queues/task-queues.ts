// The three BullMQ queues tasks wait in. Postgres is the source of truth for a task; a job only carries the
// task id, so nothing of a task's input (and never a credential) is copied into Redis.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TaskQueue, TaskType } from '../generated/prisma/enums.js';

export const queueNames: Record<TaskQueue, string> = { CRITICAL: 'critical', NORMAL: 'normal', BATCH: 'batch' };

export interface TaskJobData {
  taskId: string;
}

/** Jobs on the `schedules` queue are firings of a Schedule; the worker turns each into a Task. */
export interface ScheduleJobData {
  scheduleId: string;
}

/** Tries of one schedule firing (upsertScheduler). */
const firingAttempts = 8;

export const schedulesQueueName = 'schedules';

/** Jobs on the `notifications` queue: one signed POST to one subscriber, retried with backoff. */
export interface NotificationJobData {
  subscriberId: string;
  notificationId: string;
  event: string;
  payload: Record<string, unknown>;
}

export const notificationsQueueName = 'notifications';

/** The parts of a task its job is made from. */
export interface EnqueueRequest {
  id: string;
  jobId: string | null;
  type: TaskType;
  status: string;
  queue: TaskQueue;
  /** Switchyard priority, 0..100, higher first. */
  priority: number;
  runAt: Date | null;
  maxAttempts: number;
  attempts: number;
  backoffMs: number;
}

/**
 * BullMQ runs lower numbers first and treats 0 as "no priority" (ahead of every prioritised job), so
 * Switchyard's 0..100 (higher first) maps onto 101..1.
 */
export function bullPriority(priority: number): number {
  return 101 - priority;
}

/**
 * Connection errors surface where they matter (the command that failed, /readyz); the shared connection
 * logs the outage once (redis.ts). Without a listener, Node would print every reconnect attempt.
 */
function quiet<Q extends Queue<any>>(queue: Q): Q {
  queue.on('error', () => undefined);
  return queue;
}

export class QueueUnavailableError extends Error {
  constructor(status: string) {
    super(`Redis is not connected (${status})`);
  }
}

export class TaskQueues {
  private readonly queues: Record<TaskQueue, Queue<TaskJobData>>;
  readonly schedules: Queue<ScheduleJobData>;
  readonly notifications: Queue<NotificationJobData>;

  /** Whether Redis is connected now (a call may still fail; without a connection it would at once). */
  get available(): boolean {
    return this.connection.status === 'ready';
  }

  /**
   * BullMQ waits, without a timeout, for a connection that has never been ready, so with Redis down since
   * start-up a request would hang. Fail at once instead; callers report QUEUE_UNAVAILABLE.
   */
  private assertConnected(): void {
    if (!this.available) throw new QueueUnavailableError(this.connection.status);
  }

  constructor(
    private readonly connection: Redis,
    prefix: string,
  ) {
    const make = (queue: TaskQueue) => quiet(new Queue<TaskJobData>(queueNames[queue], { connection, prefix }));
    this.queues = { CRITICAL: make('CRITICAL'), NORMAL: make('NORMAL'), BATCH: make('BATCH') };
    this.schedules = quiet(new Queue<ScheduleJobData>(schedulesQueueName, { connection, prefix }));
    this.notifications = quiet(new Queue<NotificationJobData>(notificationsQueueName, { connection, prefix }));
  }

  /**
   * Queues notification deliveries in one Redis round trip (addBulk), each with six attempts over about a
   * minute (1, 2, 4, 8, 16 s apart) unless configured otherwise.
   */
  async notify(deliveries: NotificationJobData[], attempts = 6, backoffMs = 1000): Promise<void> {
    if (deliveries.length === 0) return;
    this.assertConnected();
    const opts = { attempts, backoff: { type: 'exponential', delay: backoffMs }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };
    await this.notifications.addBulk(deliveries.map((data) => ({ name: data.event, data, opts: { ...opts, jobId: data.notificationId } })));
  }

  /**
   * A firing that fails (Postgres unreachable for a moment) is tried again, 1, 2, 4 … 64 s apart, rather than
   * skipped until the next cron time: a firing is idempotent (ScheduleService.fire), so trying again never makes
   * a second task.
   */
  async upsertScheduler(scheduleId: string, cron: string, timezone: string): Promise<void> {
    this.assertConnected();
    await this.schedules.upsertJobScheduler(
      scheduleId,
      { pattern: cron, tz: timezone },
      {
        name: 'fire',
        data: { scheduleId },
        opts: { attempts: firingAttempts, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } },
      },
    );
  }

  async removeScheduler(scheduleId: string): Promise<void> {
    this.assertConnected();
    await this.schedules.removeJobScheduler(scheduleId);
  }

  async hasScheduler(scheduleId: string): Promise<boolean> {
    return (await this.schedules.getJobScheduler(scheduleId)) !== undefined;
  }

  /** Whether the schedule's scheduler is in Redis with the firing template upsertScheduler writes now. */
  async hasCurrentScheduler(scheduleId: string): Promise<boolean> {
    const scheduler = await this.schedules.getJobScheduler(scheduleId);
    return scheduler?.template?.opts?.attempts === firingAttempts;
  }

  get(queue: TaskQueue): Queue<TaskJobData> {
    return this.queues[queue];
  }

  /** Adds the task's job; adding a job id that already exists is a no-op, so re-enqueueing is safe. */
  async enqueue(task: EnqueueRequest): Promise<void> {
    await this.enqueueMany([task]);
  }

  /** Adds the tasks' jobs: one Redis round trip per queue (BullMQ addBulk, a MULTI), not one per job. */
  async enqueueMany(tasks: EnqueueRequest[]): Promise<void> {
    if (tasks.length === 0) return;
    this.assertConnected();
    const byQueue = new Map<TaskQueue, EnqueueRequest[]>();
    for (const task of tasks) {
      if (!task.jobId) throw new Error(`Task ${task.id} has no job id`);
      const waiting = byQueue.get(task.queue);
      if (waiting) waiting.push(task);
      else byQueue.set(task.queue, [task]);
    }
    // A lone job goes as a plain add: one EVALSHA, without addBulk's MULTI around it.
    await Promise.all(
      [...byQueue].map(([queue, waiting]) =>
        waiting.length === 1
          ? this.queues[queue].add(waiting[0]!.type, { taskId: waiting[0]!.id }, this.jobOptions(waiting[0]!))
          : this.queues[queue].addBulk(waiting.map((task) => ({ name: task.type, data: { taskId: task.id }, opts: this.jobOptions(task) }))),
      ),
    );
  }

  private jobOptions(task: EnqueueRequest) {
    const delay = task.status === 'SCHEDULED' && task.runAt ? Math.max(0, task.runAt.getTime() - Date.now()) : 0;
    return {
      jobId: task.jobId!,
      priority: bullPriority(task.priority),
      delay,
      // Retries of retryable failures: BullMQ waits backoffMs, then doubles it each time.
      attempts: Math.max(1, task.maxAttempts - task.attempts),
      backoff: { type: 'exponential', delay: task.backoffMs },
      // Task history lives in Postgres; Redis keeps only a short tail for BullMQ's own tooling.
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    };
  }

  /** Removes a waiting or delayed job. False when the job is already running (locked by a worker). */
  async remove(queue: TaskQueue, jobId: string): Promise<boolean> {
    this.assertConnected();
    const job = await this.queues[queue].getJob(jobId);
    if (!job) return true;
    return (await this.queues[queue].remove(jobId)) === 1;
  }

  /** Makes a delayed job (a retry waiting out its backoff) due now. False when the job is gone. */
  async promote(queue: TaskQueue, jobId: string): Promise<boolean> {
    this.assertConnected();
    const job = await this.queues[queue].getJob(jobId);
    if (!job) return false;
    await job.promote().catch(() => undefined); // refused unless delayed: it is due, or running, already
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...Object.values(this.queues), this.schedules, this.notifications].map((queue) => queue.close()));
  }
}
