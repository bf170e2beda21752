import { z } from 'zod';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Task } from '../../generated/prisma/client.js';
import type { TaskQueue, TaskSource, TaskStatus, TaskType } from '../../generated/prisma/enums.js';
import type { TaskQueues } from '../../queues/task-queues.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { InvalidStateError, NotFoundError, UnavailableError } from '../errors.js';
import { parseInput } from '../validation.js';
import { appendStatusChange } from './task-events.js';
import { defaultQueueFor, taskParamSchemas } from './task-params.js';
import { retryableTaskStatuses, waitingTaskStatuses } from './task-states.js';

const taskTypes = ['ORG_CHECK', 'RETRIEVE', 'VALIDATE', 'DEPLOY', 'QUICK_DEPLOY'] as const;
const taskQueues = ['CRITICAL', 'NORMAL', 'BATCH'] as const;

const submitInput = z.object({
  type: z.enum(taskTypes),
  org: z.string().trim().min(1, 'must not be empty'),
  queue: z.enum(taskQueues).optional(),
  priority: z.number().int('must be a whole number').min(0).max(100).default(50),
  maxAttempts: z.number().int('must be a whole number').min(1).max(10).default(3),
  runAt: z.date().optional(),
});

export interface SubmitTaskInput {
  type: TaskType;
  org: string;
  params?: unknown;
  queue?: TaskQueue | null;
  priority?: number | null;
  maxAttempts?: number | null;
  runAt?: Date | null;
  source?: TaskSource;
}

export interface TaskFilter {
  status?: TaskStatus[] | null;
  type?: TaskType[] | null;
  org?: string | null;
  queue?: TaskQueue[] | null;
  source?: TaskSource[] | null;
}

/** The BullMQ job id of the attempt announced by the STATUS event with this sequence number. */
function jobIdFor(taskId: string, seq: number): string {
  return `${taskId}-${seq}`;
}

export class TaskService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly queues: TaskQueues,
  ) {}

  async submit(actor: Principal, input: SubmitTaskInput): Promise<Task> {
    const data = parseInput(submitInput, {
      type: input.type,
      org: input.org,
      queue: input.queue ?? undefined,
      priority: input.priority ?? undefined,
      maxAttempts: input.maxAttempts ?? undefined,
      runAt: input.runAt ?? undefined,
    });
    const params = parseInput(taskParamSchemas[data.type], input.params ?? {}, ['params']);
    const org = await this.prisma.org.findUnique({ where: { alias: data.org } });
    if (!org) throw new NotFoundError('ORG_NOT_FOUND', `No org with alias "${data.org}"`);
    const scheduled = data.runAt !== undefined && data.runAt.getTime() > Date.now();
    const status: TaskStatus = scheduled ? 'SCHEDULED' : 'QUEUED';

    const task = await this.prisma.$transaction(async (tx) => {
      const created = await tx.task.create({
        data: {
          type: data.type,
          status,
          queue: data.queue ?? defaultQueueFor[data.type],
          priority: data.priority,
          maxAttempts: data.maxAttempts,
          input: params as Prisma.InputJsonValue,
          source: input.source ?? 'API',
          requestedBy: actorLabel(actor),
          runAt: data.runAt ?? null,
          orgId: org.id,
          orgAlias: org.alias,
        },
      });
      return this.announce(tx, created, status, null);
    });
    return this.enqueueOrFail(task);
  }

  async cancel(actor: Principal, taskId: string): Promise<Task> {
    const task = await this.require(taskId);
    if (!(waitingTaskStatuses as readonly string[]).includes(task.status)) {
      throw new InvalidStateError('TASK_NOT_CANCELLABLE', `A ${task.status} task cannot be cancelled`, task.status);
    }
    if (task.jobId && !(await this.queues.remove(task.queue, task.jobId))) {
      // A worker picked the job up between our read and the removal.
      throw new InvalidStateError('TASK_NOT_CANCELLABLE', 'The task has just started running', 'RUNNING');
    }
    const cancelled = await this.transition(task.id, waitingTaskStatuses, 'CANCELLED', {
      finishedAt: new Date(),
      errorCode: 'CANCELLED',
      errorMessage: `Cancelled by ${actorLabel(actor)}`,
    });
    if (!cancelled) {
      const current = await this.require(taskId);
      throw new InvalidStateError('TASK_NOT_CANCELLABLE', `A ${current.status} task cannot be cancelled`, current.status);
    }
    return cancelled;
  }

  async retry(actor: Principal, taskId: string): Promise<Task> {
    const task = await this.require(taskId);
    if (!(retryableTaskStatuses as readonly string[]).includes(task.status)) {
      throw new InvalidStateError('TASK_NOT_RETRYABLE', `Only FAILED or CANCELLED tasks can be retried; this one is ${task.status}`, task.status);
    }
    const retried = await this.transition(task.id, retryableTaskStatuses, 'QUEUED', {
      result: undefined,
      errorCode: null,
      errorMessage: null,
      progress: 0,
      phase: null,
      startedAt: null,
      finishedAt: null,
      runAt: null,
    }, { retriedBy: actorLabel(actor) });
    if (!retried) {
      const current = await this.require(taskId);
      throw new InvalidStateError('TASK_NOT_RETRYABLE', `Only FAILED or CANCELLED tasks can be retried; this one is ${current.status}`, current.status);
    }
    return this.enqueueOrFail(retried);
  }

  async find<T extends Omit<Prisma.TaskFindUniqueArgs, 'where'>>(taskId: string, query?: T) {
    return this.prisma.task.findUnique({ ...(query as T), where: { id: taskId } });
  }

  async require(taskId: string): Promise<Task> {
    const task = await this.prisma.task.findUnique({ where: { id: taskId } });
    if (!task) throw new NotFoundError('TASK_NOT_FOUND', 'No task with that id');
    return task;
  }

  /** Tasks newest first; `query` carries the caller's pagination and selection. */
  async list<T extends Omit<Prisma.TaskFindManyArgs, 'where' | 'orderBy'>>(filter: TaskFilter, query: T) {
    return this.prisma.task.findMany({ ...query, where: this.where(filter), orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  async count(filter: TaskFilter): Promise<number> {
    return this.prisma.task.count({ where: this.where(filter) });
  }

  private where(filter: TaskFilter): Prisma.TaskWhereInput {
    return {
      ...(filter.status?.length ? { status: { in: filter.status } } : {}),
      ...(filter.type?.length ? { type: { in: filter.type } } : {}),
      ...(filter.queue?.length ? { queue: { in: filter.queue } } : {}),
      ...(filter.source?.length ? { source: { in: filter.source } } : {}),
      ...(filter.org ? { orgAlias: filter.org } : {}),
    };
  }

  /**
   * Moves a task from one of `from` to `to` and records the STATUS event, atomically. Returns null when
   * the task was no longer in `from` (somebody else moved it first).
   */
  private async transition(
    taskId: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    changes: Prisma.TaskUpdateManyMutationInput,
    details?: Record<string, string>,
  ): Promise<Task | null> {
    return this.prisma.$transaction(async (tx) => {
      const { count } = await tx.task.updateMany({ where: { id: taskId, status: { in: [...from] } }, data: { ...changes, status: to } });
      if (count === 0) return null;
      const task = await tx.task.findUniqueOrThrow({ where: { id: taskId } });
      return this.announce(tx, task, to, details ?? null);
    });
  }

  /** Appends the STATUS event; a QUEUED/SCHEDULED one also names the BullMQ job of the new attempt. */
  private async announce(
    tx: Prisma.TransactionClient,
    task: Task,
    status: TaskStatus,
    details: Record<string, string> | null,
  ): Promise<Task> {
    const seq = await appendStatusChange(tx, task.id, status, details);
    if (status !== 'QUEUED' && status !== 'SCHEDULED') return tx.task.findUniqueOrThrow({ where: { id: task.id } });
    return tx.task.update({ where: { id: task.id }, data: { jobId: jobIdFor(task.id, seq) } });
  }

  private async enqueueOrFail(task: Task): Promise<Task> {
    try {
      await this.queues.enqueue({
        taskId: task.id,
        jobId: task.jobId!,
        type: task.type,
        queue: task.queue,
        priority: task.priority,
        runAt: task.status === 'SCHEDULED' ? task.runAt : null,
      });
      return task;
    } catch (error) {
      // Without Redis the task cannot run; say so now rather than leave it waiting for nothing.
      await this.transition(task.id, waitingTaskStatuses, 'FAILED', {
        finishedAt: new Date(),
        errorCode: 'QUEUE_UNAVAILABLE',
        errorMessage: 'The task queue (Redis) was unreachable; retry the task when it is back',
      });
      throw new UnavailableError('QUEUE_UNAVAILABLE', 'The task queue is unavailable; the task was not queued', error);
    }
  }
}
