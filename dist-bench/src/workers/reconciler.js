// Postgres is the source of truth for tasks; Redis only holds their jobs. When Redis loses jobs (restarted
// without persistence, flushed) or a worker dies mid-task, this puts the two back in agreement:
// - a QUEUED/SCHEDULED task without its job gets the job again (same id, remaining delay);
// - a RUNNING task whose worker is gone, and whose job is gone or already settled by BullMQ, is retried as a
//   lost run, or FAILED with WORKER_LOST when it has no attempts left.
// A worker counts as gone only when its heartbeat is missing twice, a grace period apart: right after a
// Redis flush every live worker's heartbeat is missing until its next beat, and its tasks must not run twice.
// Jobs are added under their existing ids, which BullMQ de-duplicates, so several workers may run this.
import { setTimeout as sleep } from 'node:timers/promises';
export async function reconcileTasks(deps) {
    const { prisma, queues, lifecycle, logger } = deps;
    const report = { requeued: [], recovered: [], failed: [] };
    const tasks = await prisma.task.findMany({ where: { status: { in: ['QUEUED', 'SCHEDULED', 'RUNNING'] } } });
    const suspects = [];
    for (const task of tasks) {
        if (!task.jobId)
            continue;
        const job = await queues.get(task.queue).getJob(task.jobId);
        if (task.status === 'RUNNING') {
            const state = job ? await job.getState() : 'missing';
            const settled = state === 'missing' || state === 'failed' || state === 'completed' || state === 'unknown';
            if (settled && !(task.workerId && (await deps.isWorkerAlive(task.workerId))))
                suspects.push(task);
            continue;
        }
        if (job)
            continue;
        await queues.enqueue(task);
        report.requeued.push(task.id);
    }
    if (suspects.length > 0) {
        await sleep(deps.workerGraceMs);
        for (const task of suspects) {
            if (task.workerId && (await deps.isWorkerAlive(task.workerId)))
                continue;
            const lost = { code: 'WORKER_LOST', message: 'The task was running when its worker or queue was lost' };
            if (task.attempts >= task.maxAttempts) {
                if (await lifecycle.fail(task.id, lost))
                    report.failed.push(task.id);
                continue;
            }
            const requeued = await lifecycle.requeue(task.id, lost, 0);
            if (!requeued)
                continue;
            // The old job, if BullMQ still keeps it as failed or completed, would block its id: start a new one.
            const renewed = await lifecycle.renewJob(requeued.id);
            if (renewed)
                await queues.enqueue(renewed);
            report.recovered.push(task.id);
        }
    }
    if (report.requeued.length || report.recovered.length || report.failed.length)
        logger.warn(report, 'reconciled tasks with the queue');
    return report;
}
