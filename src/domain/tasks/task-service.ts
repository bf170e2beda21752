// What API callers do with tasks: submit, list, cancel, retry. Running them is the workers' side
// (task-lifecycle.ts); both write through the TaskJournal.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../../canonical-json.js';
import { Prisma, rawStatements, type PrismaClient, type RawStatements } from '../../db/prisma.js';
import type { Task } from '../../generated/prisma/client.js';
import type { TaskQueue, TaskSource, TaskStatus, TaskType } from '../../generated/prisma/enums.js';
import type { TaskQueues } from '../../queues/task-queues.js';
import { artifactParam, markArtifactUsed, useArtifactParam } from '../artifacts/artifact-service.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { ConflictError, InvalidStateError, NotFoundError, UnavailableError, ValidationFailedError, withQueue } from '../errors.js';
import { rawId } from '../ids.js';
import { unlessOrgRemoved } from '../orgs/org-removed.js';
import { parseInput } from '../validation.js';
import { lastStartedDeployment } from './started-deployment.js';
import { checkTestLevelForOrg, defaultQueueFor, taskParamSchemas } from './task-params.js';
import { statusEvent, type NewTask, type TaskIdempotency, type TaskJournal } from './task-journal.js';
import { retryableTaskStatuses, waitingTaskStatuses } from './task-states.js';

export const taskTypes = ['ORG_CHECK', 'RETRIEVE', 'VALIDATE', 'DEPLOY', 'QUICK_DEPLOY', 'DIAGNOSTIC'] as const;
const taskQueues = ['CRITICAL', 'NORMAL', 'BATCH'] as const;

const maxRunAtAheadMs = 731 * 24 * 3_600_000;

const submitInput = z.object({
  type: z.enum(taskTypes),
  org: z.string().trim().min(1, 'must not be empty'),
  queue: z.enum(taskQueues).optional(),
  priority: z.number().int('must be a whole number').min(0).max(100).default(50),
  maxAttempts: z.number().int('must be a whole number').min(1).max(10).default(3),
  retryBackoffMs: z.number().int('must be a whole number').min(0).max(3_600_000).default(5000),
  timeoutMs: z.number().int('must be a whole number').min(100).max(24 * 3_600_000).optional(),
  // At most two years ahead: a task waiting longer would hold its org (removeOrg refuses) and its artifact as long.
  runAt: z
    .date()
    .refine((date) => date.getTime() <= Date.now() + maxRunAtAheadMs, 'must be at most 731 days (two years) ahead')
    .optional(),
});

export interface SubmitTaskInput {
  type: TaskType;
  org: string;
  params?: unknown;
  queue?: TaskQueue | null;
  priority?: number | null;
  maxAttempts?: number | null;
  retryBackoffMs?: number | null;
  timeoutMs?: number | null;
  runAt?: Date | null;
  source?: TaskSource;
  /** A submit repeated with the same key (by the same requester) answers with the task the first one created. */
  idempotencyKey?: string | null;
}

const idempotencyKey = z
  .string()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must not contain control characters or unpaired surrogates');

/** A request's fields but params as given, an omitted field and a null alike. */
function givenFields(input: SubmitTaskInput) {
  return {
    type: input.type,
    org: input.org,
    queue: input.queue ?? undefined,
    priority: input.priority ?? undefined,
    maxAttempts: input.maxAttempts ?? undefined,
    retryBackoffMs: input.retryBackoffMs ?? undefined,
    timeoutMs: input.timeoutMs ?? undefined,
    runAt: input.runAt ?? undefined,
  };
}

/**
 * The idempotency key of a submit, scoped to its requester (a user's tokens share their keys; the local CLI has its
 * own), with the digest of the request it comes with. None without a key.
 */
function submitIdempotency(actor: Principal, input: SubmitTaskInput): TaskIdempotency | undefined {
  if (input.idempotencyKey === undefined || input.idempotencyKey === null) return undefined;
  const key = parseInput(idempotencyKey, input.idempotencyKey, ['idempotencyKey']);
  // The request as given: the same request always has the same digest, however its JSON was written.
  const request = { ...givenFields(input), params: input.params ?? {} };
  return { scope: actor.userId ?? actor.kind, key, digest: createHash('sha256').update(canonicalJson(request)).digest('hex') };
}

/** A validated task request: what submitTask and schedules both create tasks from. */
export interface TaskSpec {
  type: TaskType;
  orgId: string;
  orgAlias: string;
  params: Prisma.InputJsonValue;
  queue: TaskQueue;
  priority: number;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number | null;
}

export interface TaskFilter {
  status?: TaskStatus[] | null;
  type?: TaskType[] | null;
  org?: string | null;
  queue?: TaskQueue[] | null;
  source?: TaskSource[] | null;
}

/** Where a task comes from: recorded on it (source, requestedBy, scheduleId) and when it may start. */
export interface TaskOrigin {
  source: TaskSource;
  requestedBy: string;
  runAt?: Date | null;
  scheduleId?: string;
  idempotency?: TaskIdempotency;
}

export interface ValidatedTask {
  spec: TaskSpec;
  runAt: Date | null;
}

/** A task to create: a validated spec, where it comes from, and for TaskJournal.createMany its id and gate row. */
export interface TaskRequest {
  spec: TaskSpec;
  origin: TaskOrigin;
  id?: string;
  gateId?: string;
}

/** The row a validated request creates: QUEUED, or SCHEDULED while its runAt is in the future. */
export function newTask({ spec, origin, id, gateId }: TaskRequest): NewTask {
  return {
    type: spec.type,
    status: origin.runAt && origin.runAt.getTime() > Date.now() ? 'SCHEDULED' : 'QUEUED',
    queue: spec.queue,
    priority: spec.priority,
    maxAttempts: spec.maxAttempts,
    backoffMs: spec.backoffMs,
    timeoutMs: spec.timeoutMs,
    input: spec.params,
    source: origin.source,
    requestedBy: origin.requestedBy,
    runAt: origin.runAt ?? null,
    orgId: spec.orgId,
    orgAlias: spec.orgAlias,
    scheduleId: origin.scheduleId ?? null,
    idempotency: origin.idempotency ?? null,
    ...(id ? { id } : {}),
    ...(gateId ? { gateId } : {}),
  };
}

/** Tells the worker running a task to abort it (see workers/worker-host.ts). */
export type CancelSignal = (taskId: string) => Promise<void>;

export class TaskService {
  private readonly sql: RawStatements;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly queues: TaskQueues,
    private readonly journal: TaskJournal,
    private readonly signalCancel: CancelSignal,
  ) {
    this.sql = rawStatements(prisma);
  }

  /** Whether tasks can be queued now (Redis connected); a queueing may still fail. */
  get canQueue(): boolean {
    return this.queues.available;
  }

  async submit(actor: Principal, input: SubmitTaskInput): Promise<Task> {
    const idempotency = submitIdempotency(actor, input);
    // A repeat is answered before validation: what the first submit referred to (an artifact, say) may be gone.
    const earlier = idempotency && (await this.findSubmitted(idempotency));
    if (earlier) return this.answerRepeat(actor, earlier, idempotency);
    const { spec, runAt } = await this.validate(input);
    const origin: TaskOrigin = { source: input.source ?? 'API', requestedBy: actorLabel(actor), runAt, ...(idempotency ? { idempotency } : {}) };
    const { tasks, notQueued } = await this.createMany([{ spec, origin }]);
    if (notQueued) throw notQueued;
    if (tasks[0]) return tasks[0];
    // Not written: a concurrent submit with the same key was, and its insert has committed.
    const winner = idempotency && (await this.findSubmitted(idempotency));
    if (!winner) throw new Error('The task was neither written nor found under its idempotency key');
    return this.answerRepeat(actor, winner, idempotency);
  }

  private findSubmitted({ scope, key }: TaskIdempotency): Promise<Task | null> {
    return this.prisma.task.findUnique({ where: { idempotencyScope_idempotencyKey: { idempotencyScope: scope, idempotencyKey: key } } });
  }

  /**
   * A submit repeated under its idempotency key: the task the first one created, as it is now. If the key came with
   * another request, it is refused. If the first submit's task was written but never queued (Redis was down then,
   * and at every repeat since), the repeat queues it, which is what the caller is still asking for. A task that
   * was queued, or retried with retryTask, is not run again by a repeat.
   */
  private async answerRepeat(actor: Principal, task: Task, idempotency: TaskIdempotency): Promise<Task> {
    if (task.requestDigest !== idempotency.digest) {
      throw new ConflictError('IDEMPOTENCY_KEY_REUSED', `This idempotencyKey was already used for a different request (task ${task.id}): use a new key for a new request`);
    }
    if (task.status !== 'FAILED' || task.errorCode !== 'QUEUE_UNAVAILABLE' || !(await this.neverQueued(task.id))) return task;
    // Still no Redis here: say so without writing anything (a client retrying through an outage adds no events).
    if (!this.canQueue) {
      throw new UnavailableError('QUEUE_UNAVAILABLE', `The task queue is unavailable; the task (${task.id}) is still FAILED, not queued: repeat the submit when Redis is back`);
    }
    try {
      return await this.retry(actor, task.id, 'resubmittedBy');
    } catch (error) {
      if (error instanceof InvalidStateError) return this.require(task.id); // another repeat queued it first
      throw error;
    }
  }

  /**
   * Whether the task's log after its first status holds only what submits that met an unreachable Redis write:
   * FAILED with QUEUE_UNAVAILABLE, and the QUEUED (or SCHEDULED) of a repeated submit (resubmittedBy). Nothing ran, nobody
   * cancelled or retried it.
   */
  private async neverQueued(taskId: string): Promise<boolean> {
    const [row] = await this.sql<{ never: boolean }>(Prisma.sql`
      SELECT NOT EXISTS (
        SELECT 1 FROM "TaskEvent" e
        WHERE e."taskId" = ${taskId}::uuid AND e.seq > 1
          AND NOT (e.kind = 'STATUS' AND ((e.payload->>'status' = 'FAILED' AND e.payload->>'code' = 'QUEUE_UNAVAILABLE')
                                          OR (e.payload->>'status' IN ('QUEUED', 'SCHEDULED') AND e.payload->>'resubmittedBy' IS NOT NULL)))
      ) AS never`);
    return row?.never === true;
  }

  /** Checks a task request (field paths as given) and resolves its org. */
  async validate(input: SubmitTaskInput, pathPrefix: string[] = []): Promise<ValidatedTask> {
    const [result] = await this.validateMany([input], pathPrefix);
    if (result!.status === 'rejected') throw result!.reason;
    return result!.value;
  }

  /** `validate` for several requests at once (each settles on its own), with one query for all their orgs. */
  async validateMany(inputs: SubmitTaskInput[], pathPrefix: string[] = []): Promise<Array<PromiseSettledResult<ValidatedTask>>> {
    const parsed = inputs.map((input) => {
      try {
        const data = parseInput(submitInput, givenFields(input), pathPrefix);
        return { ok: true as const, data, params: parseInput(taskParamSchemas[data.type], input.params ?? {}, [...pathPrefix, 'params']) };
      } catch (error) {
        return { ok: false as const, error };
      }
    });
    const aliases = [...new Set(parsed.flatMap((entry) => (entry.ok ? [entry.data.org] : [])))];
    // Raw SQL: on the path of every submit and webhook, where Prisma's per-query cost showed.
    const found = aliases.length ? await this.sql<{ id: string; alias: string; kind: string }>(Prisma.sql`SELECT "id", "alias", "kind" FROM "Org" WHERE "alias" = ANY(${aliases}::text[])`) : [];
    const orgs = new Map(found.map((org) => [org.alias, org] as const));
    return Promise.allSettled(
      parsed.map(async (entry): Promise<ValidatedTask> => {
        if (!entry.ok) throw entry.error;
        const { data } = entry;
        const org = orgs.get(data.org);
        if (!org) throw new NotFoundError('ORG_NOT_FOUND', `No org with alias "${data.org}"`);
        checkTestLevelForOrg(data.type, entry.params, org.kind, [...pathPrefix, 'params']);
        const params = await this.resolveReferences(data.type, entry.params, org.id, [...pathPrefix, 'params']);
        return {
          spec: {
            type: data.type,
            orgId: org.id,
            orgAlias: org.alias,
            params: params as Prisma.InputJsonValue,
            queue: data.queue ?? defaultQueueFor[data.type],
            priority: data.priority,
            maxAttempts: data.maxAttempts,
            backoffMs: data.retryBackoffMs,
            timeoutMs: data.timeoutMs ?? null,
          },
          runAt: data.runAt ?? null,
        };
      }),
    );
  }

  /**
   * Checks what params point at, so a task never starts with a dangling reference: a deployment's artifact
   * must exist, and a quick deploy's validation task must be a successful VALIDATE of the same org (its
   * deploy id is filled in).
   */
  private async resolveReferences(type: TaskType, params: Record<string, unknown>, orgId: string, path: string[]): Promise<Record<string, unknown>> {
    if (type === 'QUICK_DEPLOY' && typeof params.validationTaskId === 'string') {
      const validationTaskId = rawId(params.validationTaskId, 'Task');
      const validation = validationTaskId ? await this.prisma.task.findUnique({ where: { id: validationTaskId } }) : null;
      const deployId = (validation?.result as { deployId?: unknown } | null)?.deployId;
      if (!validation || validation.type !== 'VALIDATE' || validation.status !== 'SUCCEEDED' || validation.orgId !== orgId || typeof deployId !== 'string') {
        throw ValidationFailedError.single([...path, 'validationTaskId'], 'must be a SUCCEEDED VALIDATE task on the same org');
      }
      return { ...params, validationTaskId: validation.id, deployId };
    }
    return useArtifactParam(this.prisma, type, params, path); // a deployment's artifact, marked used
  }

  /**
   * Persists a validated task (QUEUED, or SCHEDULED when runAt is in the future) and enqueues its job. `id`: the
   * new task's id, when the caller must know it in advance (else a random one).
   */
  async create(spec: TaskSpec, origin: TaskOrigin, id?: string): Promise<Task> {
    const { tasks, notQueued } = await this.createMany([{ spec, origin, ...(id ? { id } : {}) }]);
    if (notQueued) throw notQueued;
    return tasks[0]!;
  }

  /**
   * Persists validated tasks in one statement and enqueues their jobs in one Redis round trip per queue. With a
   * `gate` (see TaskJournal.createMany) only the tasks whose gate row was inserted are written (and enqueued), in
   * the same statement; `gated` lists the gate rows inserted. When the tasks were written but could not be
   * enqueued: by default they are FAILED (QUEUE_UNAVAILABLE) and `notQueued` says so, for a caller that can tell
   * its client to try again; with `queueLater`, they stay QUEUED for the workers' reconciler to enqueue once
   * Redis is back, and `queuedLater` is true (for a sender that would not try again).
   */
  async createMany(
    requests: TaskRequest[],
    gate?: Prisma.Sql,
    options: { queueLater?: boolean } = {},
  ): Promise<{ tasks: Task[]; gated: string[]; notQueued: UnavailableError | null; queuedLater: boolean }> {
    const created = await unlessOrgRemoved(this.journal.createMany(requests.map(newTask), gate), 'Task_orgId_fkey', 'the task');
    if (options.queueLater) {
      const queued = created.tasks.length === 0 || (await this.queues.enqueueMany(created.tasks).then(() => true, () => false));
      return { ...created, notQueued: null, queuedLater: !queued };
    }
    try {
      await this.enqueueOrFail(created.tasks);
      return { ...created, notQueued: null, queuedLater: false };
    } catch (error) {
      if (error instanceof UnavailableError) return { ...created, notQueued: error, queuedLater: false };
      throw error;
    }
  }

  /**
   * A waiting task is cancelled at once. A running one gets cancelRequestedAt and its worker is told to
   * abort it; it ends CANCELLED when the child has stopped (follow its events). So does a deployment task
   * waiting for a retry whose earlier attempt started a deployment: it runs once more, only to cancel that
   * deployment in Salesforce (a worker's run holds the credentials; nothing else may).
   */
  async cancel(actor: Principal, taskId: string): Promise<Task> {
    const task = await this.require(taskId);
    const by = actorLabel(actor);
    if (task.status === 'RUNNING') {
      const requested = await this.journal.change(task.id, ['RUNNING'], { cancelRequestedAt: task.cancelRequestedAt ?? new Date() }, [
        { kind: 'LOG', payload: { level: 'warn', message: `Cancellation requested by ${by}` } },
      ]);
      if (requested) {
        // Best effort: the request is recorded, and workers also find it in Postgres (within cancelPollMs).
        await this.signalCancel(task.id).catch(() => undefined);
        return requested;
      }
      return this.cancel(actor, taskId); // it just finished or was requeued: decide again on fresh state
    }
    if (!(waitingTaskStatuses as readonly string[]).includes(task.status)) {
      throw new InvalidStateError('TASK_NOT_CANCELLABLE', `A ${task.status} task cannot be cancelled`, task.status);
    }
    const deployId = await lastStartedDeployment(this.prisma, task);
    if (deployId !== undefined) return this.cancelStartedDeployment(actor, task, deployId);
    if (task.jobId && !(await withQueue(() => this.queues.remove(task.queue, task.jobId!), 'remove the job'))) {
      // A worker locked the job between our read and the removal: treat it as running.
      await this.signalCancel(task.id).catch(() => undefined);
    }
    const cancelled = await this.journal.change(
      task.id,
      waitingTaskStatuses,
      { status: 'CANCELLED', finishedAt: new Date(), errorCode: 'CANCELLED', errorMessage: `Cancelled by ${by}`, phase: null },
      [statusEvent('CANCELLED', { by })],
    );
    if (!cancelled) return this.cancel(actor, taskId); // the state moved under us: decide again
    // Remove the job again after the commit: a concurrent retry may have given the task a new job, or its add may
    // have landed after our first removal. (A retry re-checks after its own add, so one of the two sees it.)
    if (cancelled.jobId) await this.queues.remove(cancelled.queue, cancelled.jobId).catch(() => undefined);
    return cancelled;
  }

  /**
   * Marks a waiting deployment task for cancellation and makes its job due now: the worker that picks it up
   * cancels the deployment `deployId` in Salesforce instead of following it (TaskExecutor), then ends the task
   * CANCELLED.
   */
  private async cancelStartedDeployment(actor: Principal, task: Task, deployId: string): Promise<Task> {
    const by = actorLabel(actor);
    // Asking again only makes the job due again (it may have been running when we first asked).
    const requested = task.cancelRequestedAt
      ? task
      : await this.journal.change(task.id, waitingTaskStatuses, { cancelRequestedAt: new Date() }, [
          { kind: 'LOG', payload: { level: 'warn', message: `Cancellation requested by ${by}: deployment ${deployId}, which an earlier attempt started, is cancelled in Salesforce first` } },
        ]);
    if (!requested) return this.cancel(actor, task.id); // it started or ended meanwhile: decide again
    // The cancellation is on record either way. If Redis cannot take the promotion now, the run comes after the
    // job's backoff (or, for a job Redis lost, from the reconciler); asking again makes it due.
    if (requested.jobId) await this.queues.promote(requested.queue, requested.jobId).catch(() => false);
    return requested;
  }

  /** `as`: how the QUEUED event names who asked (a repeated submit of a task never queued says resubmittedBy). */
  async retry(actor: Principal, taskId: string, as: 'retriedBy' | 'resubmittedBy' = 'retriedBy'): Promise<Task> {
    const task = await this.require(taskId);
    const notRetryable = (status: string) =>
      new InvalidStateError('TASK_NOT_RETRYABLE', `Only FAILED or CANCELLED tasks can be retried; this one is ${status}`, status);
    if (!(retryableTaskStatuses as readonly string[]).includes(task.status)) throw notRetryable(task.status);
    // Its org must still be there: the run would only fail with ORG_NOT_FOUND (the org goes with its id; an org that
    // took over the alias since is another org).
    if (!task.orgId) throw new NotFoundError('ORG_NOT_FOUND', `Org ${task.orgAlias} has been removed: submit a new task for the org it should run on`);
    // Its artifact must still be there (the artifact retention deletes those of finished tasks), and is used again.
    const artifactId = artifactParam(task.type, task.input);
    if (artifactId !== undefined && !(await markArtifactUsed(this.prisma, artifactId))) {
      throw new NotFoundError('ARTIFACT_NOT_FOUND', "The task's artifact has been deleted (artifact retention): upload the zip again and submit a new task");
    }
    // A repeated submit that asked to run later (runAt) still waits for then; a retry runs now.
    const waits = as === 'resubmittedBy' && task.runAt !== null && task.runAt.getTime() > Date.now();
    const status = waits ? 'SCHEDULED' : 'QUEUED';
    const retried = await this.journal.change(
      task.id,
      retryableTaskStatuses,
      {
        status,
        result: null, // the run before's (a failed deployment's failures): not this run's
        errorCode: null,
        errorMessage: null,
        progress: 0,
        phase: null,
        attempts: 0,
        startedAt: null,
        finishedAt: null,
        runAt: waits ? task.runAt : null,
        cancelRequestedAt: null,
      },
      [statusEvent(status, { [as]: actorLabel(actor) })],
      { newJob: true },
    );
    if (!retried) throw notRetryable((await this.require(taskId)).status);
    const queued = await this.enqueueOrFail(retried);
    // A concurrent cancel may have ended this attempt before its job was added: take the job back out.
    const current = await this.prisma.task.findUnique({ where: { id: taskId }, select: { status: true, jobId: true } });
    if (current && (current.jobId !== queued.jobId || current.status !== status)) {
      await this.queues.remove(queued.queue, queued.jobId!).catch(() => undefined);
    }
    return queued;
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

  /** Every given field must match; a list matches any of its values (an empty list, none), as the docs say. */
  private where(filter: TaskFilter): Prisma.TaskWhereInput {
    return {
      ...(filter.status ? { status: { in: filter.status } } : {}),
      ...(filter.type ? { type: { in: filter.type } } : {}),
      ...(filter.queue ? { queue: { in: filter.queue } } : {}),
      ...(filter.source ? { source: { in: filter.source } } : {}),
      ...(filter.org !== undefined && filter.org !== null ? { orgAlias: filter.org } : {}),
    };
  }

  private async enqueueOrFail<T extends Task | Task[]>(tasks: T): Promise<T> {
    const list: Task[] = Array.isArray(tasks) ? tasks : [tasks];
    try {
      await this.queues.enqueueMany(list);
      return tasks;
    } catch (error) {
      // Without Redis the tasks cannot run; say so now rather than leave them waiting for nothing. (Should this
      // write fail too, they stay QUEUED without a job, and the workers' reconciler enqueues them later.)
      let recorded = 0;
      for (const task of list) {
        recorded += await this.journal
          .change(
            task.id,
            waitingTaskStatuses,
            {
              status: 'FAILED',
              finishedAt: new Date(),
              errorCode: 'QUEUE_UNAVAILABLE',
              errorMessage: 'The task queue (Redis) was unreachable; retry the task when it is back',
            },
            [statusEvent('FAILED', { code: 'QUEUE_UNAVAILABLE' })],
          )
          // A null answer: someone else moved the task first (a cancel). Only a write that failed is unrecorded.
          .then(
            () => 1,
            () => 0,
          );
      }
      const which = list.length === 1 ? `the task (${list[0]!.id})` : 'the tasks';
      throw new UnavailableError(
        'QUEUE_UNAVAILABLE',
        recorded === list.length
          ? `The task queue is unavailable; ${which} could not be queued and ${list.length === 1 ? 'is' : 'are'} FAILED: retry when Redis is back`
          : `The task queue is unavailable; ${which} could not be queued, nor recorded as FAILED (Postgres): a worker queues what is still QUEUED once Redis is back`,
        error,
      );
    }
  }
}
