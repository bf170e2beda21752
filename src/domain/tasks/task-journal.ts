// The one writer of task state changes and of the task's event log, shared by the API's TaskService and the
// workers' TaskLifecycle. Sequence numbers come from bumping Task.lastEventSeq inside the writer's
// transaction: the row lock that update takes serialises concurrent writers of one task, so seq is gap-free
// and in commit order, which live-subscription replay relies on. Events are announced on the bus only after
// their transaction commits.
import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '../../db/prisma.js';
import type { TaskEventMessage, TaskEventPublisher } from '../../events/task-event-bus.js';
import type { Task, TaskEvent } from '../../generated/prisma/client.js';
import type { TaskEventKind, TaskQueue, TaskSource, TaskStatus, TaskType } from '../../generated/prisma/enums.js';
import { finalTaskStatuses } from './task-states.js';

export interface PendingEvent {
  kind: TaskEventKind;
  payload: Prisma.InputJsonValue;
}

/** A task to create: what a validated request fixes; everything else starts at its default. */
export interface NewTask {
  type: TaskType;
  status: 'QUEUED' | 'SCHEDULED';
  queue: TaskQueue;
  priority: number;
  maxAttempts: number;
  backoffMs: number;
  timeoutMs: number | null;
  input: Prisma.InputJsonValue;
  source: TaskSource;
  requestedBy: string;
  runAt: Date | null;
  orgId: string;
  orgAlias: string;
  scheduleId: string | null;
  /** Made up here unless given (a caller that records the id elsewhere in the same statement gives it). */
  id?: string;
  /** With a gate (see TaskJournal.createMany): the id of the gate row this task is written with. */
  gateId?: string;
}

/** What live listeners are told about an event (its row id is not part of it). */
interface AnnouncedEvent {
  seq: number;
  kind: TaskEventKind;
  payload: unknown;
  createdAt: Date;
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
    if (result) await this.announce([{ task: result.task, events: result.rows }]);
    return result?.task ?? null;
  }

  /**
   * Creates tasks, each with its first STATUS event (seq 1, whose job id the task gets), in ONE statement: a
   * single statement is atomic on its own, so there is no BEGIN/COMMIT, and it is raw SQL because Prisma 6's
   * query compiler costs more CPU than the round trip (task creation is on the path of every submit and webhook).
   *
   * `gate` is an `INSERT … RETURNING id` (a uuid) run in the same statement: a task with a `gateId` is written
   * only when the gate inserted the row with that id (e.g. a webhook delivery that `ON CONFLICT DO NOTHING` did
   * not find to be a duplicate). `gated` lists the ids the gate inserted. The statement commits as a whole or not
   * at all.
   */
  async createMany(tasks: NewTask[], gate?: Prisma.Sql): Promise<{ tasks: Task[]; gated: string[] }> {
    if (tasks.length === 0 && !gate) return { tasks: [], gated: [] };
    // Written from this process's clock, like Prisma's @default(now()) and @updatedAt.
    const now = new Date();
    const rows = tasks.map((task) => ({ ...task, id: task.id ?? randomUUID(), first: statusEvent(task.status) }));
    const result = await this.prisma.$queryRaw<Array<Task & { gateId?: string | null }>>`
      WITH ${gate ? Prisma.sql`gate AS (${gate})${rows.length > 0 ? Prisma.sql`,` : Prisma.empty}` : Prisma.empty}
      ${rows.length > 0 ? this.insertSql(rows, now, gate !== undefined) : Prisma.empty}
      ${
        !gate
          ? Prisma.sql`SELECT * FROM tasks`
          : rows.length === 0
            ? Prisma.sql`SELECT gate.id AS "gateId" FROM gate`
            : Prisma.sql`SELECT gate.id AS "gateId", tasks.* FROM gate LEFT JOIN fresh ON fresh."gateId" = gate.id LEFT JOIN tasks ON tasks.id = fresh.id`
      }`;
    const byId = new Map<string, Task>();
    const gated = new Set<string>();
    for (const { gateId, ...task } of result) {
      if (gateId) gated.add(gateId);
      if (task.id) byId.set(task.id, task as Task);
    }
    const written = rows.flatMap((row) => {
      const task = byId.get(row.id);
      return task ? [{ task, events: [{ seq: 1, ...row.first, createdAt: now }] }] : [];
    });
    await this.announce(written);
    return { tasks: written.map(({ task }) => task), gated: [...gated] };
  }

  /**
   * The CTEs `fresh` (the new rows), `tasks` (their INSERT) and the INSERT of their first events. The rows travel as
   * ONE jsonb parameter, unpacked by jsonb_to_recordset: Prisma's query compiler spends about 2 µs of CPU on every
   * parameter it is given, so a row's 18 values as parameters of their own cost more than the row's whole INSERT.
   */
  private insertSql(rows: Array<NewTask & { id: string; first: PendingEvent }>, now: Date, gated: boolean): Prisma.Sql {
    const json = JSON.stringify(
      rows.map((row) => ({
        id: row.id,
        type: row.type,
        status: row.status,
        queue: row.queue,
        priority: row.priority,
        input: row.input,
        maxAttempts: row.maxAttempts,
        backoffMs: row.backoffMs,
        timeoutMs: row.timeoutMs,
        source: row.source,
        requestedBy: row.requestedBy,
        runAt: row.runAt,
        jobId: `${row.id}-1`,
        orgId: row.orgId,
        orgAlias: row.orgAlias,
        scheduleId: row.scheduleId,
        firstEvent: row.first.payload,
        gateId: row.gateId ?? null,
      })),
    );
    return Prisma.sql`
      fresh AS (
        SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS row (
          id uuid, type "TaskType", status "TaskStatus", queue "TaskQueue", priority int, input jsonb, "maxAttempts" int,
          "backoffMs" int, "timeoutMs" int, source "TaskSource", "requestedBy" text, "runAt" timestamp(3), "jobId" text,
          "orgId" uuid, "orgAlias" text, "scheduleId" uuid, "firstEvent" jsonb, "gateId" uuid)
      ),
      tasks AS (
        INSERT INTO "Task" (id, type, status, queue, priority, input, "maxAttempts", "backoffMs", "timeoutMs", source,
                            "requestedBy", "runAt", "jobId", "lastEventSeq", "orgId", "orgAlias", "scheduleId",
                            "createdAt", "updatedAt")
        SELECT id, type, status, queue, priority, input, "maxAttempts", "backoffMs", "timeoutMs", source, "requestedBy",
               "runAt", "jobId", 1, "orgId", "orgAlias", "scheduleId", ${now}::timestamp(3), ${now}::timestamp(3)
        FROM fresh ${gated ? Prisma.sql`WHERE "gateId" IN (SELECT id FROM gate)` : Prisma.empty}
        RETURNING *
      ),
      events AS (
        INSERT INTO "TaskEvent" ("taskId", seq, kind, payload, "createdAt")
        SELECT fresh.id, 1, 'STATUS', fresh."firstEvent", ${now}::timestamp(3) FROM fresh JOIN tasks ON tasks.id = fresh.id
      )`;
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

  /** Announces the events of all these tasks with one publish call, after their commit. */
  private async announce(written: Array<{ task: Task; events: AnnouncedEvent[] }>): Promise<void> {
    const messages = written.flatMap(({ task, events }) =>
      events.map(
        (event): TaskEventMessage => ({
          taskId: task.id,
          seq: event.seq,
          kind: event.kind,
          payload: event.payload,
          createdAt: event.createdAt.toISOString(),
          task: { status: task.status, type: task.type, queue: task.queue, source: task.source, orgAlias: task.orgAlias, progress: task.progress },
        }),
      ),
    );
    // Best effort: the durable log has the events; live listeners catch up from Postgres. Not awaited: the
    // commands are written at once, so they still reach Redis before anything this caller does next on that
    // connection (e.g. adding the tasks' jobs), and waiting for Redis's reply would only delay the caller.
    void this.publisher.publish(messages).catch(() => undefined);
    for (const { task, events } of written) {
      const final = events.some((event) => event.kind === 'STATUS' && (finalTaskStatuses as readonly string[]).includes((event.payload as { status?: string } | null)?.status ?? ''));
      if (final) await this.onFinished(task).catch(() => undefined);
    }
  }
}
