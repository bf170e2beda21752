// Runs one BullMQ job: claims its task, takes the org lock when the type needs it, hands a fresh child the
// request and a single-use credential grant, relays the child's reports into the task's event log, and
// settles the task from the child's outcome. Retries are BullMQ's (attempts with exponential backoff);
// this decides which failures deserve one.
import { DelayedError, UnrecoverableError } from 'bullmq';
import { defaultTimeoutMsFor, orgExclusiveTypes } from '../domain/tasks/task-params.js';
import { ChildSession } from './child-session.js';
/** Retry delay BullMQ will use before attempt `attempt + 1` with exponential backoff. */
function backoffFor(task, attempt) {
    return task.backoffMs * 2 ** Math.max(0, attempt - 1);
}
export class TaskExecutor {
    deps;
    options;
    /** Sessions by task id, so cancellation and shutdown can reach them. */
    running = new Map();
    lastWaitPhase = new Map();
    constructor(deps, options) {
        this.deps = deps;
        this.options = options;
    }
    async process(job, token) {
        const { lifecycle, logger } = this.deps;
        let task = await lifecycle.load(job.data.taskId);
        // A job of an earlier attempt, or of a task that no longer exists: nothing to do.
        if (!task || task.jobId !== job.id)
            return { skipped: 'stale job' };
        if (task.status === 'RUNNING') {
            // This job was already running when its worker died (BullMQ found it stalled): a lost run.
            const lost = { code: 'WORKER_LOST', message: 'The worker running this task stopped unexpectedly' };
            if (task.attempts >= task.maxAttempts) {
                await lifecycle.fail(task.id, lost);
                throw new UnrecoverableError(lost.code);
            }
            await lifecycle.requeue(task.id, lost, 0);
            task = (await lifecycle.load(task.id));
        }
        if (task.status !== 'QUEUED' && task.status !== 'SCHEDULED')
            return { skipped: `task is ${task.status}` };
        if (!task.org) {
            await lifecycle.fail(task.id, { code: 'ORG_NOT_FOUND', message: `Org ${task.orgAlias} was removed` }, ['QUEUED', 'SCHEDULED']);
            throw new UnrecoverableError('ORG_NOT_FOUND');
        }
        const org = task.org;
        const exclusive = orgExclusiveTypes.has(task.type);
        if (exclusive) {
            const attempt = await this.deps.orgLock.tryAcquire(org.id, task.id, task.createdAt);
            if (!attempt.acquired) {
                const phase = `waiting for the org lock: position ${attempt.position}${attempt.holder ? `, held by task ${attempt.holder}` : ''}`;
                const changed = this.lastWaitPhase.get(task.id) !== phase;
                this.lastWaitPhase.set(task.id, phase);
                await lifecycle.waiting(task.id, phase, changed);
                await job.moveToDelayed(Date.now() + this.options.lockPollMs, token);
                throw new DelayedError();
            }
            this.lastWaitPhase.delete(task.id);
        }
        let renewTimer;
        try {
            const claimed = await lifecycle.claim(task, this.options.workerId);
            if (!claimed)
                return { skipped: 'task left the queue before it started' };
            if (exclusive) {
                renewTimer = setInterval(() => void this.deps.orgLock.renew(org.id, task.id).catch(() => undefined), this.deps.orgLock.leaseMs / 3);
            }
            const outcome = await this.runChild(job, claimed, { alias: org.alias, instanceUrl: org.instanceUrl, secretRef: org.secretRef });
            return await this.settle(claimed, outcome);
        }
        finally {
            if (renewTimer)
                clearInterval(renewTimer);
            if (exclusive)
                await this.deps.orgLock.release(org.id, task.id).catch(() => undefined);
        }
    }
    async runChild(job, task, org) {
        const { lifecycle, launcher, secrets } = this.deps;
        let files;
        try {
            files = await this.deps.effects.files(task);
        }
        catch (error) {
            return { kind: 'failed', code: error.code ?? 'INVALID_PACKAGE', message: error.message, retryable: false };
        }
        let grant;
        try {
            grant = await secrets.issueGrant(org.secretRef, this.options.grantTtlSeconds);
        }
        catch (error) {
            this.deps.logger.warn({ taskId: task.id, err: error.message }, 'issuing a credential grant failed');
            return { kind: 'failed', code: 'CREDENTIALS_UNAVAILABLE', message: 'The secret store did not issue the org\'s credentials', retryable: true };
        }
        const child = launcher.take();
        const session = new ChildSession(child, {
            onProgress: async (percent, phase, details) => {
                await lifecycle.progress(task.id, percent, phase, details);
                // BullMQ's own view (dashboards such as Bull Board); best effort.
                await job.updateProgress({ percent, ...(phase ? { phase } : {}) }).catch(() => undefined);
            },
            onLog: (level, message) => lifecycle.log(task.id, level, message),
            redeem: async (token) => (this.deps.redeemIpcGrant ? this.deps.redeemIpcGrant(token) : null),
        }, this.options.killGraceMs);
        this.running.set(task.id, session);
        const timeoutMs = task.timeoutMs ?? defaultTimeoutMsFor[task.type];
        const timer = setTimeout(() => session.abort('timeout'), timeoutMs);
        try {
            // The child gets its request first (a ready spare starts at once); recording its pid and the cancel check
            // run meanwhile, off the dispatch path. Both end before the outcome is settled, so settling still clears
            // childPid after it was recorded.
            const outcome = session.run({
                taskId: task.id,
                type: task.type,
                attempt: task.attempts,
                params: task.input,
                org: { alias: org.alias, instanceUrl: org.instanceUrl },
                grant,
                files,
            });
            try {
                await lifecycle.recordChild(task.id, session.pid);
                // A cancel may have arrived between claim and now.
                if (await lifecycle.isCancelRequested(task.id))
                    session.abort('cancelled');
            }
            catch (error) {
                // No run the worker cannot record: stop the child before failing the job.
                session.abort('shutdown');
                await outcome;
                throw error;
            }
            return await outcome;
        }
        finally {
            clearTimeout(timer);
            this.running.delete(task.id);
        }
    }
    async settle(task, outcome) {
        const { lifecycle, logger } = this.deps;
        switch (outcome.kind) {
            case 'succeeded':
                await lifecycle.succeed(task.id, await this.deps.effects.succeeded(task, outcome.result));
                return { status: 'SUCCEEDED' };
            case 'aborted':
                if (outcome.reason === 'cancelled') {
                    await lifecycle.cancelled(task.id);
                    return { status: 'CANCELLED' };
                }
                if (outcome.reason === 'timeout') {
                    const limit = task.timeoutMs ?? defaultTimeoutMsFor[task.type];
                    await this.fail(task, { code: 'TIMEOUT', message: `The task ran longer than its ${limit} ms limit` });
                    throw new UnrecoverableError('TIMEOUT');
                }
                return this.retryOrFail(task, { code: 'WORKER_SHUTDOWN', message: 'The worker shut down while the task ran', retryable: true });
            case 'failed':
                return this.retryOrFail(task, outcome);
            case 'crashed':
                logger.warn({ taskId: task.id, exitCode: outcome.exitCode, signal: outcome.signal }, 'task child exited without reporting');
                return this.retryOrFail(task, {
                    code: 'CHILD_CRASHED',
                    message: `The task's process exited unexpectedly (code ${outcome.exitCode}, signal ${outcome.signal})`,
                    retryable: true,
                });
        }
    }
    async retryOrFail(task, failure) {
        if (failure.retryable && task.attempts < task.maxAttempts) {
            await this.deps.lifecycle.requeue(task.id, failure, backoffFor(task, task.attempts));
            // Any plain error makes BullMQ schedule the next attempt after the backoff.
            throw new Error(failure.code);
        }
        await this.fail(task, failure);
        throw new UnrecoverableError(failure.code);
    }
    async fail(task, failure) {
        // The org first (as for a success), so whoever sees the task FAILED also sees the org it marked.
        await this.deps.effects.failed(task, failure).catch((error) => this.deps.logger.warn({ err: error, taskId: task.id }, 'applying a failure to the org failed'));
        await this.deps.lifecycle.fail(task.id, failure);
    }
}
