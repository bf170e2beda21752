// A Switchyard worker: BullMQ workers for the chosen queues, each job run by the TaskExecutor in a fresh
// child process. Listens for cancellation requests (Redis pub/sub, with a database poll as a safety net),
// settles jobs BullMQ gave up on (stalled too often), and drains on shutdown.
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { TaskEffects } from '../domain/tasks/task-effects.js';
import { TaskLifecycle } from '../domain/tasks/task-lifecycle.js';
import { controlChannel } from '../events/task-event-bus.js';
import { notificationsQueueName, queueNames, schedulesQueueName, } from '../queues/task-queues.js';
import { BuiltinSecretStore } from '../secrets/builtin-store.js';
import { ChildLauncher } from './child-launcher.js';
import { OrgLock } from './org-lock.js';
import { ProcessSampler } from './process-stats.js';
import { reconcileTasks } from './reconciler.js';
import { TaskExecutor } from './task-executor.js';
export function workerKey(prefix, workerId) {
    return `${prefix}:worker:${workerId}`;
}
export class WorkerHost {
    deps;
    options;
    workerId = `${hostname()}:${process.pid}`;
    executor;
    workers = [];
    connection;
    subscriber;
    /** Forks the task children; exposed read-only so tests can observe the spare child. */
    launcher;
    lifecycle;
    cancelPoll;
    heartbeat;
    reconcileTimer;
    startedAt = new Date().toISOString();
    sampler = new ProcessSampler();
    constructor(deps, options) {
        this.deps = deps;
        this.options = options;
        // BullMQ workers need a connection that retries forever (maxRetriesPerRequest: null).
        this.connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, connectionName: 'switchyard-worker' });
        this.subscriber = new Redis(options.redisUrl, { maxRetriesPerRequest: null, connectionName: 'switchyard-worker-control' });
        for (const redis of [this.connection, this.subscriber])
            redis.on('error', () => undefined); // reconnects by itself
        this.launcher = new ChildLauncher({ keepSpare: options.keepSpareChild });
        this.lifecycle = new TaskLifecycle(deps.prisma, deps.journal);
        const secrets = deps.secrets;
        this.executor = new TaskExecutor({
            lifecycle: this.lifecycle,
            effects: new TaskEffects(deps.prisma, deps.artifacts),
            secrets,
            redeemIpcGrant: secrets instanceof BuiltinSecretStore ? (token) => secrets.redeem(token) : null,
            launcher: this.launcher,
            orgLock: new OrgLock(this.connection, options.prefix, options.orgLockLeaseMs, options.orgLockPollMs),
            logger: deps.logger,
        }, { workerId: this.workerId, killGraceMs: options.killGraceMs, grantTtlSeconds: 60, lockPollMs: options.orgLockPollMs });
    }
    async start() {
        await this.beat();
        this.heartbeat = setInterval(() => void this.beat().catch(() => undefined), this.options.heartbeatMs);
        await this.reconcile();
        this.reconcileTimer = setInterval(() => void this.reconcile().catch(() => undefined), this.options.reconcileIntervalMs);
        await this.subscriber.subscribe(controlChannel(this.options.prefix));
        this.subscriber.on('message', (_channel, raw) => this.onControl(raw));
        for (const queue of this.options.queues) {
            const worker = new Worker(queueNames[queue], (job, token) => this.executor.process(job, token), {
                connection: this.connection,
                prefix: this.options.prefix,
                concurrency: this.options.concurrency[queue] ?? 1,
                lockDuration: this.options.lockDurationMs,
                stalledInterval: this.options.stalledIntervalMs,
                maxStalledCount: 1,
                autorun: true,
            });
            worker.on('failed', (job, error) => void this.onJobFailed(job, error));
            worker.on('error', (error) => this.deps.logger.warn({ err: error.message, queue }, 'worker error'));
            this.workers.push(worker);
        }
        // Every worker also turns schedule firings into tasks; BullMQ hands each firing to exactly one of them.
        const firings = new Worker(schedulesQueueName, async (job) => ({ taskId: (await this.deps.schedules.fire(job.data.scheduleId))?.id ?? null }), {
            connection: this.connection,
            prefix: this.options.prefix,
            concurrency: 1,
        });
        firings.on('error', (error) => this.deps.logger.warn({ err: error.message }, 'schedule worker error'));
        this.workers.push(firings);
        // …and delivers outbound notifications (HTTP only, no child process: no credentials are involved).
        const notifications = new Worker(notificationsQueueName, (job) => this.deps.notifications.deliver(job.data, job.attemptsMade + 1), {
            connection: this.connection,
            prefix: this.options.prefix,
            concurrency: 4,
        });
        notifications.on('error', (error) => this.deps.logger.warn({ err: error.message }, 'notification worker error'));
        this.workers.push(notifications);
        this.cancelPoll = setInterval(() => void this.pollCancellations(), this.options.cancelPollMs);
        this.deps.logger.info({ workerId: this.workerId, queues: this.options.queues, concurrency: this.options.concurrency }, 'worker started');
    }
    /** Stops taking jobs, lets running ones finish within `drainMs`, then aborts the rest (they are retried). */
    async close(drainMs) {
        clearInterval(this.cancelPoll);
        clearInterval(this.reconcileTimer);
        const drained = Promise.all(this.workers.map((worker) => worker.close()));
        const timer = setTimeout(() => {
            for (const session of this.executor.running.values())
                session.abort('shutdown');
        }, drainMs);
        await drained;
        clearTimeout(timer);
        await this.launcher.close();
        clearInterval(this.heartbeat);
        await this.connection.del(workerKey(this.options.prefix, this.workerId)).catch(() => undefined);
        this.subscriber.disconnect();
        await this.connection.quit().catch(() => this.connection.disconnect());
    }
    async reconcile() {
        const restored = await this.deps.schedules.restoreSchedulers();
        if (restored > 0)
            this.deps.logger.warn({ restored }, 'restored schedules missing from Redis');
        return reconcileTasks({
            prisma: this.deps.prisma,
            queues: this.deps.queues,
            lifecycle: this.lifecycle,
            isWorkerAlive: async (workerId) => (await this.connection.exists(workerKey(this.options.prefix, workerId))) === 1,
            workerGraceMs: Math.round(this.options.heartbeatMs * 1.5),
            logger: this.deps.logger,
        });
    }
    /** Announces this worker (and what it is running) for three beats; resource views read these keys. */
    async beat() {
        const children = await Promise.all([...this.executor.running.entries()].map(async ([taskId, session]) => ({
            taskId,
            pid: session.pid ?? null,
            ...(session.pid ? await this.sampler.sample(session.pid) : { cpuPercent: null, rssBytes: null }),
        })));
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
        });
        await this.connection.set(workerKey(this.options.prefix, this.workerId), value, 'PX', this.options.heartbeatMs * 3);
    }
    onControl(raw) {
        let message;
        try {
            message = JSON.parse(raw);
        }
        catch {
            return;
        }
        if (message.type === 'cancel')
            this.executor.running.get(message.taskId)?.abort('cancelled');
    }
    /** The pub/sub message can be missed (reconnect); the database request cannot. */
    async pollCancellations() {
        const ids = [...this.executor.running.keys()];
        const requested = await this.lifecycle.cancelRequested(ids).catch(() => []);
        for (const id of requested)
            this.executor.running.get(id)?.abort('cancelled');
    }
    /** BullMQ gave up on a job without our processor settling its task (e.g. it stalled too often). */
    async onJobFailed(job, error) {
        if (!job)
            return;
        const task = await this.lifecycle.load(job.data.taskId).catch(() => null);
        if (!task || task.jobId !== job.id)
            return;
        const finalFailure = job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled/i.test(error.message);
        if (!finalFailure)
            return;
        if (task.status === 'RUNNING') {
            await this.lifecycle.fail(task.id, { code: 'WORKER_LOST', message: 'The worker running this task stopped unexpectedly' });
        }
        else if (task.status === 'QUEUED') {
            await this.lifecycle.fail(task.id, { code: task.errorCode ?? 'FAILED', message: task.errorMessage ?? error.message }, ['QUEUED']);
        }
    }
}
