export async function reconcileTasks(deps) {
    const { prisma, queues, lifecycle, logger } = deps;
    const report = { requeued: [], recovered: [], failed: [] };
    const tasks = await prisma.task.findMany({ where: { status: { in: ['QUEUED', 'SCHEDULED', 'RUNNING'] } } });
    for (const task of tasks) {
        if (!task.jobId)
            continue;
        const job = await queues.get(task.queue).getJob(task.jobId);
        if (job)
            continue;
        if (task.status === 'RUNNING') {
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
            await queues.enqueue(requeued);
            report.recovered.push(task.id);
            continue;
        }
        await queues.enqueue(task);
        report.requeued.push(task.id);
    }
    if (report.requeued.length || report.recovered.length || report.failed.length)
        logger.warn(report, 'reconciled tasks with the queue');
    return report;
}
