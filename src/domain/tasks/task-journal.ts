// The one writer of task state changes and of the task's event log, shared by the API's TaskService and the
// workers' TaskLifecycle. Sequence numbers come from bumping Task.lastEventSeq in the same statement that
// inserts the events (task-statements.ts): the row lock that update takes serialises concurrent writers of
// one task, so seq is gap-free and in commit order, which live-subscription replay relies on. Events are
// announced on the bus only after their statement commits.
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { TaskEventMessage, TaskEventPublisher } from '../../events/task-event-bus.js';
import type { Task } from '../../generated/prisma/client.js';
import type { TaskEventKind, TaskStatus } from '../../generated/prisma/enums.js';
import { finalTaskStatuses } from './task-states.js';
import { changeTask, createTask, type NewTask, type OrgRef, type TaskChanges } from './task-statements.js';

export interface PendingEvent {
  kind: TaskEventKind;
  payload: Prisma.InputJsonValue;
}

export interface ChangeOptions {
  /** Give the task a new BullMQ job id, derived from the seq of the first event (unique per task). */
  newJob?: boolean;
  /** Only when this is the task's current BullMQ job (a worker claiming the job it was handed). */
  jobId?: string;
  /** Only when the task's org still exists. */
  orgExists?: boolean;
  /** Count an attempt (attempts + 1); STATUS events carry the new number as `attempt`. */
  countAttempt?: boolean;
}

export function statusEvent(status: TaskStatus, details: Record<string, unknown> = {}): PendingEvent {
  return { kind: 'STATUS', payload: { status, ...details } as Prisma.InputJsonValue };
}

export class TaskJournal {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly publisher: TaskEventPublisher,
    /** Told when a task reaches a final status (outbound notifications); failures are its own business. */
    private readonly onFinished: (task: Task) => Promise<void> = async () => undefined,
  ) {}

  /**
   * Applies `changes` to the task when its status is one of `from` (any status when null), appending
   * `events` in order. Returns null when the task was no longer in `from` (somebody else moved it first) or
   * another guard of `options` failed.
   */
  async change(taskId: string, from: readonly TaskStatus[] | null, changes: TaskChanges, events: PendingEvent[], options: ChangeOptions = {}): Promise<Task | null> {
    return this.changeReturning<Task>(taskId, from, changes, events, options, false);
  }

  /** As change(), returning what a worker needs of the task's org with the task (in the same statement). */
  async changeWithOrg(taskId: string, from: readonly TaskStatus[] | null, changes: TaskChanges, events: PendingEvent[], options: ChangeOptions = {}): Promise<(Task & { org: OrgRef | null }) | null> {
    return this.changeReturning<Task & { org: OrgRef | null }>(taskId, from, changes, events, options, true);
  }

  private async changeReturning<T extends Task>(
    taskId: string,
    from: readonly TaskStatus[] | null,
    changes: TaskChanges,
    events: PendingEvent[],
    options: ChangeOptions,
    withOrg: boolean,
  ): Promise<T | null> {
    const now = new Date();
    const [task] = await this.prisma.$queryRaw<T[]>(changeTask({ taskId, from, changes, events, now, withOrg, ...options }));
    if (!task) return null;
    const written = options.countAttempt
      ? events.map((event) => (event.kind === 'STATUS' ? { ...event, payload: { ...(event.payload as object), attempt: task.attempts } } : event))
      : events;
    await this.announce(task, written, now);
    return task;
  }

  /**
   * Creates a task together with its first STATUS event (seq 1, whose job id it gets) in one statement: task
   * creation is on the path of every submit and webhook.
   */
  async create(data: Omit<NewTask, 'id'> & { id?: string }, details: Record<string, unknown> = {}): Promise<Task> {
    const now = new Date();
    const first = statusEvent(data.status, details);
    const [task] = await this.prisma.$queryRaw<Task[]>(createTask({ ...data, id: data.id ?? randomUUID() }, first, now));
    await this.announce(task!, [first], now);
    return task!;
  }

  /** `events` were just written as the task's last events, all stamped `now`. */
  private async announce(task: Task, events: PendingEvent[], now: Date): Promise<void> {
    if (events.length === 0) return;
    const firstSeq = task.lastEventSeq - events.length + 1;
    const createdAt = now.toISOString();
    const messages = events.map(
      (event, index): TaskEventMessage => ({
        taskId: task.id,
        seq: firstSeq + index,
        kind: event.kind,
        payload: event.payload,
        createdAt,
        task: { status: task.status, type: task.type, queue: task.queue, source: task.source, orgAlias: task.orgAlias, progress: task.progress },
      }),
    );
    // Best effort: the durable log has the events; live listeners catch up from Postgres.
    await this.publisher.publish(messages).catch(() => undefined);
    const final = events.some((event) => event.kind === 'STATUS' && (finalTaskStatuses as readonly string[]).includes((event.payload as { status?: string }).status ?? ''));
    if (final) await this.onFinished(task).catch(() => undefined);
  }
}
