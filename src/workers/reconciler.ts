// Postgres is the source of truth for tasks; Redis only holds their jobs. When Redis loses jobs (restarted
// without persistence, flushed) or a worker dies mid-task, this puts the two back in agreement:
// - a QUEUED/SCHEDULED task without its job gets the job again (same id, remaining delay), and one whose job
//   BullMQ has already completed gets a new job;
// - a RUNNING task whose worker is gone or no longer has the run (it could not record the outcome), and whose
//   job is gone or already settled by BullMQ, is retried as a lost run, or FAILED with WORKER_LOST when it has
//   no attempts left;
// - a QUEUED/SCHEDULED task whose job BullMQ failed for good a while ago is FAILED, as the worker's failed-job handler
//   would have done had it not failed itself (Postgres unreachable just then).
// A worker counts as gone only when its heartbeat is missing twice, a grace period apart: right after a
// Redis flush every live worker's heartbeat is missing until its next beat, and its tasks must not run twice.
// Jobs are added under their existing ids, which BullMQ de-duplicates, so several workers may run this.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/prisma.js';
import type { Task } from '../generated/prisma/client.js';
import { lastFailure, type TaskLifecycle } from '../domain/tasks/task-lifecycle.js';
import type { TaskQueues } from '../queues/task-queues.js';

export interface ReconcileReport {
  requeued: string[];
  recovered: string[];
  failed: string[];
}

export interface ReconcileDeps {
  prisma: PrismaClient;
  queues: TaskQueues;
  lifecycle: TaskLifecycle;
  /** Whether a worker's heartbeat is there and lists the task among those it runs. */
  isRunningTask: (workerId: string, taskId: string) => Promise<boolean>;
  /** Wait between the two heartbeat checks (a little more than one heartbeat interval). */
  workerGraceMs: number;
  logger: Logger;
}

export async function reconcileTasks(deps: ReconcileDeps): Promise<ReconcileReport> {
  const { prisma, queues, lifecycle, logger } = deps;
  const report: ReconcileReport = { requeued: [], recovered: [], failed: [] };
  const tasks = await prisma.task.findMany({ where: { status: { in: ['QUEUED', 'SCHEDULED', 'RUNNING'] } } });
  const suspects: Task[] = [];
  for (const task of tasks) {
    if (!task.jobId) continue;
    const job = await queues.get(task.queue).getJob(task.jobId);
    if (task.status === 'RUNNING') {
      const state = job ? await job.getState() : 'missing';
      const settled = state === 'missing' || state === 'failed' || state === 'completed' || state === 'unknown';
      if (settled && !(task.workerId && (await deps.isRunningTask(task.workerId, task.id)))) suspects.push(task);
      continue;
    }
    if (job) {
      // A task whose job BullMQ has already finished waits for nothing. (Only a job BullMQ has finished has
      // finishedOn: the state is asked of those alone.)
      if (!job.finishedOn) continue;
      const state = await job.getState();
      if (state === 'failed') {
        // The job failed for good before a run was claimed (a SCHEDULED task is claimed straight from SCHEDULED).
        // The worker's failed-job handler settles such a task as the job fails; one that failed itself left it
        // waiting for good. Given the grace, that handler is done, one way or the other.
        if (Date.now() - job.finishedOn < deps.workerGraceMs) continue;
        // Only while the task still has this job: a retry may have given it another since this pass read it.
        if (await lifecycle.fail(task.id, lastFailure(task, job.failedReason), ['QUEUED', 'SCHEDULED'], { jobId: job.id! })) report.failed.push(task.id);
        continue;
      }
      // A task still waiting whose job BullMQ has completed: its retry was lost (e.g. the run settled after its
      // worker lost the job's lock, so BullMQ could not schedule the retry), or its job was completed unrun.
      if (state !== 'completed') continue;
      const renewed = await lifecycle.renewJob(task.id);
      if (!renewed) continue;
      await queues.enqueue(renewed);
      report.requeued.push(task.id);
      continue;
    }
    await queues.enqueue(task);
    report.requeued.push(task.id);
  }
  if (suspects.length > 0) {
    await sleep(deps.workerGraceMs);
    for (const task of suspects) {
      if (task.workerId && (await deps.isRunningTask(task.workerId, task.id))) continue;
      const lost = { code: 'WORKER_LOST', message: 'The task was running when its worker or queue was lost' };
      // Only the run this pass saw, by its job and its run (worker and attempt): another worker's reconciler may
      // have recovered the task during the grace, and a worker may be running it again already, under a new job or
      // under the same one (a run that ended retryably during the grace keeps its job id, and the job may have
      // been handed to another worker since).
      const guard = { jobId: task.jobId!, ...(task.workerId ? { run: { workerId: task.workerId, attempts: task.attempts } } : {}) };
      if (task.attempts >= task.maxAttempts) {
        if (await lifecycle.fail(task.id, lost, ['RUNNING'], guard)) report.failed.push(task.id);
        continue;
      }
      // With a new job in the same statement: the old one, if BullMQ still keeps it as failed or completed, would
      // block its id, and a task left QUEUED on it would wait for nothing.
      const requeued = await lifecycle.requeue(task.id, lost, 0, { ...guard, newJob: true });
      if (!requeued) continue;
      await queues.enqueue(requeued);
      report.recovered.push(task.id);
    }
  }
  if (report.requeued.length || report.recovered.length || report.failed.length) logger.warn(report, 'reconciled tasks with the queue');
  return report;
}
