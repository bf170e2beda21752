// The three BullMQ queues tasks wait in. Postgres is the source of truth for a task; a job only carries the
// task id, so nothing of a task's input (and never a credential) is copied into Redis.
import { Queue } from 'bullmq';
export const queueNames = { CRITICAL: 'critical', NORMAL: 'normal', BATCH: 'batch' };
export const schedulesQueueName = 'schedules';
export const notificationsQueueName = 'notifications';
/**
 * BullMQ runs lower numbers first and treats 0 as "no priority" (ahead of every prioritised job), so
 * Switchyard's 0..100 (higher first) maps onto 101..1.
 */
export function bullPriority(priority) {
    return 101 - priority;
}
/**
 * Connection errors surface where they matter (the command that failed, /readyz); the shared connection
 * logs the outage once (redis.ts). Without a listener, Node would print every reconnect attempt.
 */
function quiet(queue) {
    queue.on('error', () => undefined);
    return queue;
}
export class QueueUnavailableError extends Error {
    constructor(status) {
        super(`Redis is not connected (${status})`);
    }
}
export class TaskQueues {
    connection;
    queues;
    schedules;
    notifications;
    /**
     * BullMQ waits, without a timeout, for a connection that has never been ready, so with Redis down since
     * start-up a request would hang. Fail at once instead; callers report QUEUE_UNAVAILABLE.
     */
    assertConnected() {
        if (this.connection.status !== 'ready')
            throw new QueueUnavailableError(this.connection.status);
    }
    constructor(connection, prefix) {
        this.connection = connection;
        const make = (queue) => quiet(new Queue(queueNames[queue], { connection, prefix }));
        this.queues = { CRITICAL: make('CRITICAL'), NORMAL: make('NORMAL'), BATCH: make('BATCH') };
        this.schedules = quiet(new Queue(schedulesQueueName, { connection, prefix }));
        this.notifications = quiet(new Queue(notificationsQueueName, { connection, prefix }));
    }
    /** Six attempts over about a minute (1, 2, 4, 8, 16 s apart), unless configured otherwise. */
    async notify(data, attempts = 6, backoffMs = 1000) {
        this.assertConnected();
        await this.notifications.add(data.event, data, {
            jobId: data.notificationId,
            attempts,
            backoff: { type: 'exponential', delay: backoffMs },
            removeOnComplete: { count: 1000 },
            removeOnFail: { count: 5000 },
        });
    }
    async upsertScheduler(scheduleId, cron, timezone) {
        this.assertConnected();
        await this.schedules.upsertJobScheduler(scheduleId, { pattern: cron, tz: timezone }, { name: 'fire', data: { scheduleId }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 1000 } } });
    }
    async removeScheduler(scheduleId) {
        this.assertConnected();
        await this.schedules.removeJobScheduler(scheduleId);
    }
    async hasScheduler(scheduleId) {
        return (await this.schedules.getJobScheduler(scheduleId)) !== undefined;
    }
    get(queue) {
        return this.queues[queue];
    }
    /** Adds the task's job; adding a job id that already exists is a no-op, so re-enqueueing is safe. */
    async enqueue(task) {
        if (!task.jobId)
            throw new Error(`Task ${task.id} has no job id`);
        this.assertConnected();
        const delay = task.status === 'SCHEDULED' && task.runAt ? Math.max(0, task.runAt.getTime() - Date.now()) : 0;
        await this.queues[task.queue].add(task.type, { taskId: task.id }, {
            jobId: task.jobId,
            priority: bullPriority(task.priority),
            delay,
            // Retries of retryable failures: BullMQ waits backoffMs, then doubles it each time.
            attempts: Math.max(1, task.maxAttempts - task.attempts),
            backoff: { type: 'exponential', delay: task.backoffMs },
            // Task history lives in Postgres; Redis keeps only a short tail for BullMQ's own tooling.
            removeOnComplete: { count: 1000 },
            removeOnFail: { count: 5000 },
        });
    }
    /** Removes a waiting or delayed job. False when the job is already running (locked by a worker). */
    async remove(queue, jobId) {
        this.assertConnected();
        const job = await this.queues[queue].getJob(jobId);
        if (!job)
            return true;
        return (await this.queues[queue].remove(jobId)) === 1;
    }
    async close() {
        await Promise.all([...Object.values(this.queues), this.schedules, this.notifications].map((queue) => queue.close()));
    }
}
