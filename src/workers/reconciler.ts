// Postgres is the source of truth for tasks; Redis only holds their jobs. When Redis loses jobs (restarted
// without persistence, flushed) or a worker dies mid-task, this puts the two back in agreement:
// - a QUEUED/SCHEDULED task without its job gets the job again (same id, remaining delay);
// - a RUNNING task whose job is gone and whose worker is no longer alive is retried as a lost run, or
//   FAILED with WORKER_LOST when it has no attempts left.
// Jobs are added under their existing ids, which BullMQ de-duplicates, so several workers may run this.
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/prisma.js';
import type { TaskLifecycle } from '../domain/tasks/task-lifecycle.js';
import type { TaskQueues } from '../queues/task-queues.js';

export interface ReconcileReport {
  requeued: string[];
  recovered: string[];
  failed: string[];
}

export async function reconcileTasks(deps: {
  prisma: PrismaClient;
  queues: TaskQueues;
  lifecycle: TaskLifecycle;
  isWorkerAlive: (workerId: string) => Promise<boolean>;
  logger: Logger;
}): Promise<ReconcileReport> {
  const { prisma, queues, lifecycle, logger } = deps;
  const report: ReconcileReport = { requeued: [], recovered: [], failed: [] };
  const tasks = await prisma.task.findMany({ where: { status: { in: ['QUEUED', 'SCHEDULED', 'RUNNING'] } } });
  for (const task of tasks) {
    if (!task.jobId) continue;
    const job = await queues.get(task.queue).getJob(task.jobId);
    if (job) continue;
    if (task.status === 'RUNNING') {
      if (task.workerId && (await deps.isWorkerAlive(task.workerId))) continue;
      const lost = { code: 'WORKER_LOST', message: 'The task was running when its worker or queue was lost' };
      if (task.attempts >= task.maxAttempts) {
        if (await lifecycle.fail(task.id, lost)) report.failed.push(task.id);
        continue;
      }
      const requeued = await lifecycle.requeue(task.id, lost, 0);
      if (!requeued) continue;
      await queues.enqueue(requeued);
      report.recovered.push(task.id);
      continue;
    }
    await queues.enqueue(task);
    report.requeued.push(task.id);
  }
  if (report.requeued.length || report.recovered.length || report.failed.length) logger.warn(report, 'reconciled tasks with the queue');
  return report;
}
