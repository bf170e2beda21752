import { statusEvent } from './task-journal.js';
export class TaskLifecycle {
    prisma;
    journal;
    constructor(prisma, journal) {
        this.prisma = prisma;
        this.journal = journal;
    }
    async load(taskId) {
        return this.prisma.task.findUnique({ where: { id: taskId }, include: { org: true } });
    }
    /** QUEUED/SCHEDULED → RUNNING, counting the attempt. Null when the task is no longer waiting. */
    claim(task, workerId) {
        const attempt = task.attempts + 1;
        return this.journal.change(task.id, ['QUEUED', 'SCHEDULED'], { status: 'RUNNING', attempts: attempt, startedAt: new Date(), workerId, childPid: null, progress: 0, phase: null, errorCode: null, errorMessage: null }, [statusEvent('RUNNING', { attempt, worker: workerId })]);
    }
    async recordChild(taskId, pid) {
        await this.prisma.task.updateMany({ where: { id: taskId, status: 'RUNNING' }, data: { childPid: pid ?? null } });
    }
    async progress(taskId, percent, phase, details) {
        await this.journal.change(taskId, ['RUNNING'], { progress: percent, ...(phase !== undefined ? { phase } : {}) }, [
            {
                kind: 'PROGRESS',
                payload: { percent, ...(phase !== undefined ? { phase } : {}), ...(details ? { details } : {}) },
            },
        ]);
    }
    async log(taskId, level, message) {
        await this.journal.change(taskId, null, {}, [{ kind: 'LOG', payload: { level, message } }]);
    }
    succeed(taskId, result) {
        return this.journal.change(taskId, ['RUNNING'], { status: 'SUCCEEDED', result: (result ?? null), progress: 100, finishedAt: new Date(), childPid: null }, [{ kind: 'RESULT', payload: (result ?? null) }, statusEvent('SUCCEEDED')]);
    }
    fail(taskId, failure, from = ['RUNNING']) {
        return this.journal.change(taskId, from, {
            status: 'FAILED',
            errorCode: failure.code,
            errorMessage: failure.message,
            finishedAt: new Date(),
            childPid: null,
            ...(failure.details !== undefined ? { result: failure.details } : {}),
        }, [statusEvent('FAILED', { code: failure.code, message: failure.message })]);
    }
    cancelled(taskId) {
        return this.journal.change(taskId, ['RUNNING'], { status: 'CANCELLED', errorCode: 'CANCELLED', errorMessage: 'Cancelled while running', finishedAt: new Date(), childPid: null }, [statusEvent('CANCELLED')]);
    }
    /** RUNNING → QUEUED: the run ended in a retryable failure (or was lost) and will be run again. */
    requeue(taskId, failure, retryInMs) {
        return this.journal.change(taskId, ['RUNNING'], { status: 'QUEUED', errorCode: failure.code, errorMessage: failure.message, childPid: null, workerId: null, phase: `retrying in ${retryInMs} ms` }, [statusEvent('QUEUED', { retryInMs, after: failure.code, message: failure.message })]);
    }
    /** Gives a QUEUED task a fresh job id (its old job is gone or settled), with a LOG event saying so. */
    renewJob(taskId) {
        return this.journal.change(taskId, ['QUEUED'], {}, [{ kind: 'LOG', payload: { level: 'warn', message: 'Re-enqueued after its worker was lost' } }], { newJob: true });
    }
    /** Shows why a QUEUED task is not running yet; logs only when the reason changes. */
    async waiting(taskId, phase, log) {
        await this.journal.change(taskId, ['QUEUED', 'SCHEDULED'], { phase }, log ? [{ kind: 'LOG', payload: { level: 'info', message: phase } }] : []);
    }
    async isCancelRequested(taskId) {
        const task = await this.prisma.task.findUnique({ where: { id: taskId }, select: { cancelRequestedAt: true } });
        return Boolean(task?.cancelRequestedAt);
    }
    /** Running tasks with a pending cancellation, among `taskIds`. */
    async cancelRequested(taskIds) {
        if (taskIds.length === 0)
            return [];
        const rows = await this.prisma.task.findMany({ where: { id: { in: taskIds }, cancelRequestedAt: { not: null } }, select: { id: true } });
        return rows.map((row) => row.id);
    }
}
