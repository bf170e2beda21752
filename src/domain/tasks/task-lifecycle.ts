// The workers' side of a task's life: claiming it, recording what its child reports, and settling it.
// Every change goes through the TaskJournal, guarded by the status it expects, so a late or duplicate
// report (a retried job, a cancelled task) cannot overwrite a newer state.
import { Prisma, rawStatements, type PrismaClient, type RawStatements } from '../../db/prisma.js';
import type { Task } from '../../generated/prisma/client.js';
import { orgRefColumn, type ChangeOptions, type OrgRef, type RunGuard } from './task-statements.js';

export type { OrgRef } from './task-statements.js';
import { statusEvent, type TaskJournal } from './task-journal.js';

export interface TaskFailure {
  code: string;
  message: string;
  /** Kept as the task's result (e.g. a failed deployment's component and test failures). */
  details?: unknown;
}

/**
 * How a waiting task ends when its job failed for good: with the error its last run recorded, if it has one
 * (a retryable failure that then ran out of attempts), else with why the job failed.
 */
export function lastFailure(task: Pick<Task, 'errorCode' | 'errorMessage'>, jobFailure: string | undefined): TaskFailure {
  return { code: task.errorCode ?? 'FAILED', message: task.errorMessage ?? jobFailure ?? 'Its job failed' };
}

export class TaskLifecycle {
  private readonly sql: RawStatements;

  constructor(
    prisma: PrismaClient,
    private readonly journal: TaskJournal,
  ) {
    this.sql = rawStatements(prisma);
  }

  /** The task with what a worker needs of its org (null when the org was removed), in one query. */
  async load(taskId: string): Promise<(Task & { org: OrgRef | null }) | null> {
    const [row] = await this.sql<Task & { org: OrgRef | null }>(Prisma.sql`
      SELECT t.*, ${orgRefColumn} FROM "Task" t LEFT JOIN "Org" o ON o."id" = t."orgId" WHERE t."id" = ${taskId}::uuid`);
    return row ?? null;
  }

  /**
   * QUEUED/SCHEDULED → RUNNING by the worker holding BullMQ job `jobId`, counting the attempt and recording
   * the child that will run it, in one statement that also returns the org. Null when the task is no longer
   * waiting, the job is not its current one, or its org was removed: look closer with load().
   */
  async claim(taskId: string, jobId: string, workerId: string, childPid: number | undefined): Promise<(Task & { org: OrgRef }) | null> {
    // The org is there: the statement only claims a task whose org exists, and reads it in the same snapshot.
    return (await this.journal.changeWithOrg(
      taskId,
      ['QUEUED', 'SCHEDULED'],
      { status: 'RUNNING', startedAt: new Date(), workerId, childPid: childPid ?? null, progress: 0, phase: null, errorCode: null, errorMessage: null },
      [statusEvent('RUNNING', { worker: workerId })],
      { jobId, orgExists: true, countAttempt: true },
    )) as (Task & { org: OrgRef }) | null;
  }

  // A run's own writes (progress, logs, its outcome) take its RunGuard: see ChangeOptions.run.

  async progress(taskId: string, percent: number, phase: string | undefined, details?: Record<string, unknown>, run?: RunGuard): Promise<void> {
    await this.journal.change(
      taskId,
      ['RUNNING'],
      { progress: percent, ...(phase !== undefined ? { phase } : {}) },
      [
        {
          kind: 'PROGRESS',
          payload: { percent, ...(phase !== undefined ? { phase } : {}), ...(details ? { details } : {}) } as Prisma.InputJsonValue,
        },
      ],
      { run },
    );
  }

  async log(taskId: string, level: string, message: string, run?: RunGuard): Promise<void> {
    await this.journal.change(taskId, null, {}, [{ kind: 'LOG', payload: { level, message } }], { run });
  }

  succeed(taskId: string, result: unknown, run?: RunGuard): Promise<Task | null> {
    return this.journal.change(
      taskId,
      ['RUNNING'],
      { status: 'SUCCEEDED', result: (result ?? null) as Prisma.InputJsonValue, progress: 100, finishedAt: new Date(), childPid: null },
      [{ kind: 'RESULT', payload: (result ?? null) as Prisma.InputJsonValue }, statusEvent('SUCCEEDED')],
      { run },
    );
  }

  /** `guard.jobId`: only while that is still the task's job (see requeue). */
  fail(taskId: string, failure: TaskFailure, from: Task['status'][] = ['RUNNING'], guard: Pick<ChangeOptions, 'jobId' | 'run'> = {}): Promise<Task | null> {
    return this.journal.change(
      taskId,
      from,
      {
        status: 'FAILED',
        errorCode: failure.code,
        errorMessage: failure.message,
        finishedAt: new Date(),
        childPid: null,
        ...(failure.details !== undefined ? { result: failure.details as Prisma.InputJsonValue } : {}),
      },
      [statusEvent('FAILED', { code: failure.code, message: failure.message })],
      guard,
    );
  }

  cancelled(taskId: string, run?: RunGuard): Promise<Task | null> {
    return this.journal.change(
      taskId,
      ['RUNNING'],
      { status: 'CANCELLED', errorCode: 'CANCELLED', errorMessage: 'Cancelled while running', finishedAt: new Date(), childPid: null },
      [statusEvent('CANCELLED')],
      { run },
    );
  }

  /**
   * RUNNING → QUEUED: the run ended in a retryable failure (or was lost) and will be run again.
   * `guard.jobId` makes it conditional on the job the caller saw: whoever acts on a run it read earlier (a lost
   * run found by a reconciler) must not requeue a later run of the same task. `guard.newJob` gives the task a new
   * job id in the same statement.
   */
  requeue(taskId: string, failure: TaskFailure, retryInMs: number, guard: Pick<ChangeOptions, 'jobId' | 'newJob' | 'run'> = {}): Promise<Task | null> {
    return this.journal.change(
      taskId,
      ['RUNNING'],
      { status: 'QUEUED', errorCode: failure.code, errorMessage: failure.message, childPid: null, workerId: null, phase: `retrying in ${retryInMs} ms` },
      [statusEvent('QUEUED', { retryInMs, after: failure.code, message: failure.message })],
      guard,
    );
  }

  /** Gives a waiting (QUEUED or SCHEDULED) task a fresh job id (its old job is gone or settled), with a LOG event saying so. */
  renewJob(taskId: string): Promise<Task | null> {
    return this.journal.change(taskId, ['QUEUED', 'SCHEDULED'], {}, [{ kind: 'LOG', payload: { level: 'warn', message: 'Re-enqueued after its worker was lost' } }], { newJob: true });
  }

  /** Shows why a QUEUED task is not running yet; logs only when the reason changes. */
  async waiting(taskId: string, phase: string, log: boolean): Promise<void> {
    await this.journal.change(taskId, ['QUEUED', 'SCHEDULED'], { phase }, log ? [{ kind: 'LOG', payload: { level: 'info', message: phase } }] : []);
  }

  /** Running tasks with a pending cancellation, among `taskIds`. */
  async cancelRequested(taskIds: string[]): Promise<string[]> {
    if (taskIds.length === 0) return [];
    // Polled every few hundred ms while tasks run: raw SQL spares the ORM's per-query compile.
    const rows = await this.sql<{ id: string }>(Prisma.sql`
      SELECT "id" FROM "Task" WHERE "id" = ANY(${taskIds}::uuid[]) AND "cancelRequestedAt" IS NOT NULL`);
    return rows.map((row) => row.id);
  }
}
