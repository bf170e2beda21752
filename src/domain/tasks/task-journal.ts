// The one writer of task state changes and of the task's event log, shared by the API's TaskService and the
// workers' TaskLifecycle. Sequence numbers come from bumping Task.lastEventSeq inside the writer's
// transaction: the row lock that update takes serialises concurrent writers of one task, so seq is gap-free
// and in commit order, which live-subscription replay relies on. Events are announced on the bus only after
// their transaction commits.
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { TaskEventMessage, TaskEventPublisher } from '../../events/task-event-bus.js';
import type { Task, TaskEvent } from '../../generated/prisma/client.js';
import type { TaskEventKind, TaskStatus } from '../../generated/prisma/enums.js';
import { finalTaskStatuses } from './task-states.js';

export interface PendingEvent {
  kind: TaskEventKind;
  payload: Prisma.InputJsonValue;
}

export interface ChangeOptions {
  /** Give the task a new BullMQ job id, derived from the seq of the first event (unique per task). */
  newJob?: boolean;
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
   * `events` in order. Returns null when the task was no longer in `from` (somebody else moved it first).
   */
  async change(
    taskId: string,
    from: readonly TaskStatus[] | null,
    changes: Prisma.TaskUpdateManyMutationInput,
    events: PendingEvent[],
    options: ChangeOptions = {},
  ): Promise<Task | null> {
    const result = await this.prisma.$transaction(async (tx) => {
      let task: Task;
      try {
        // One UPDATE … RETURNING, guarded by the expected status; no row means someone else moved the task.
        task = await tx.task.update({
          where: from ? { id: taskId, status: { in: [...from] } } : { id: taskId },
          data: { ...changes, lastEventSeq: { increment: events.length } },
        });
      } catch (error) {
        if ((error as { code?: string }).code === 'P2025') return null;
        throw error;
      }
      return this.writeEvents(tx, task, events, options);
    });
    if (result) await this.announce(result.task, result.rows);
    return result?.task ?? null;
  }

  /**
   * Creates a task together with its first STATUS event (seq 1, whose job id it gets), as two inserts in one
   * batched transaction: task creation is on the path of every submit and webhook.
   */
  async create(data: Prisma.TaskUncheckedCreateInput, details: Record<string, unknown> = {}): Promise<Task> {
    const id = data.id ?? randomUUID();
    const first = statusEvent(data.status, details);
    const [task, row] = await this.prisma.$transaction([
      this.prisma.task.create({ data: { ...data, id, lastEventSeq: 1, jobId: `${id}-1` } }),
      this.prisma.taskEvent.create({ data: { taskId: id, seq: 1, kind: first.kind, payload: first.payload } }),
    ]);
    await this.announce(task, [row]);
    return task;
  }

  private async writeEvents(
    tx: Prisma.TransactionClient,
    updated: Task,
    events: PendingEvent[],
    options: ChangeOptions,
  ): Promise<{ task: Task; rows: TaskEvent[] }> {
    const taskId = updated.id;
    let task = updated;
    const firstSeq = task.lastEventSeq - events.length + 1;
    if (options.newJob) task = await tx.task.update({ where: { id: taskId }, data: { jobId: `${taskId}-${firstSeq}` } });
    const rows: TaskEvent[] = [];
    for (const [index, event] of events.entries()) {
      rows.push(await tx.taskEvent.create({ data: { taskId, seq: firstSeq + index, kind: event.kind, payload: event.payload } }));
    }
    return { task, rows };
  }

  private async announce(task: Task, rows: TaskEvent[]): Promise<void> {
    const messages = rows.map(
      (row): TaskEventMessage => ({
        taskId: task.id,
        seq: row.seq,
        kind: row.kind,
        payload: row.payload,
        createdAt: row.createdAt.toISOString(),
        task: { status: task.status, type: task.type, queue: task.queue, source: task.source, orgAlias: task.orgAlias, progress: task.progress },
      }),
    );
    // Best effort: the durable log has the events; live listeners catch up from Postgres.
    await this.publisher.publish(messages).catch(() => undefined);
    const final = rows.some((row) => row.kind === 'STATUS' && (finalTaskStatuses as readonly string[]).includes((row.payload as { status?: string }).status ?? ''));
    if (final) await this.onFinished(task).catch(() => undefined);
  }
}
