// The one writer of task state changes and of the task's event log, shared by the API's TaskService and the
// workers' TaskLifecycle. Sequence numbers come from bumping Task.lastEventSeq in the same statement that
// inserts the events (task-statements.ts): the row lock that update takes serialises concurrent writers of
// one task, so seq is gap-free and in commit order, which live-subscription replay relies on. Events are
// announced on the bus only after their statement commits.
import { randomUUID } from 'node:crypto';
import { Prisma, rawStatements, type PrismaClient, type RawStatements } from '../../db/prisma.js';
import type { TaskEventMessage, TaskEventPublisher } from '../../events/task-event-bus.js';
import type { Task } from '../../generated/prisma/client.js';
import type { TaskEventKind, TaskQueue, TaskSource, TaskStatus, TaskType } from '../../generated/prisma/enums.js';
import { finalTaskStatuses } from './task-states.js';
import { changeTask, insertTasks, type ChangeOptions, type OrgRef, type TaskChanges } from './task-statements.js';

export interface PendingEvent {
  kind: TaskEventKind;
  payload: Prisma.InputJsonValue;
}

/** submitTask's idempotency key, whose it is (the requester's scope) and the digest of the request it came with. */
export interface TaskIdempotency {
  scope: string;
  key: string;
  digest: string;
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
  /** submitTask's idempotency key: a task whose key its requester already used is not written. */
  idempotency?: TaskIdempotency | null;
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

/** Who hears of tasks that end: outbound notifications. */
export interface FinishedTaskNotifier {
  /**
   * Whether a task ending now may have anyone to notify. When so, the statement that ends it marks its
   * notifications pending, until taskFinished has queued them.
   */
  anyoneToNotify(): Promise<boolean>;
  /** Queues the notifications of a task that has just ended (after the commit); failures are its own business. */
  taskFinished(task: Task): Promise<void>;
}

const nobodyToNotify: FinishedTaskNotifier = { anyoneToNotify: async () => false, taskFinished: async () => undefined };

export function statusEvent(status: TaskStatus, details: Record<string, unknown> = {}): PendingEvent {
  return { kind: 'STATUS', payload: { status, ...details } as Prisma.InputJsonValue };
}

export class TaskJournal {
  private readonly sql: RawStatements;

  constructor(
    prisma: PrismaClient,
    private readonly publisher: TaskEventPublisher,
    private readonly notifier: FinishedTaskNotifier = nobodyToNotify,
  ) {
    this.sql = rawStatements(prisma);
  }

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
    if (changes.status !== undefined && changes.notificationsPending === undefined) changes = { ...changes, notificationsPending: await this.pendingOnChangeTo(changes.status) };
    const [task] = await this.sql<T>(changeTask({ taskId, from, changes, events, now, withOrg, ...options }));
    if (!task) return null;
    const written = options.countAttempt
      ? events.map((event) => (event.kind === 'STATUS' ? { ...event, payload: { ...(event.payload as object), attempt: task.attempts } } : event))
      : events;
    const firstSeq = task.lastEventSeq - written.length + 1;
    await this.announce([{ task, events: written.map((event, index) => ({ ...event, seq: firstSeq + index, createdAt: now })) }]);
    return task;
  }

  /**
   * `notificationsPending` of a task whose status changes: a task that ends with someone to notify has them
   * pending until they are queued (announce; else the workers' reconciler); one that no longer has ended
   * (retried) has none.
   */
  private async pendingOnChangeTo(status: TaskStatus): Promise<boolean> {
    if (!(finalTaskStatuses as readonly string[]).includes(status)) return false;
    return this.notifier.anyoneToNotify().catch(() => true);
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
    // A gated insert writes only rows of inserted gate rows: one without a gate id would vanish silently.
    if (gate && tasks.some((task) => !task.gateId)) throw new Error('Every task of a gated insert needs a gateId');
    // Written from this process's clock, like Prisma's @default(now()) and @updatedAt.
    const now = new Date();
    const rows = tasks.map((task) => ({ ...task, id: task.id ?? randomUUID(), first: statusEvent(task.status) }));
    const result = await this.sql<Task & { gateId?: string | null }>(Prisma.sql`
      WITH ${gate ? Prisma.sql`gate AS (${gate})${rows.length > 0 ? Prisma.sql`,` : Prisma.empty}` : Prisma.empty}
      ${rows.length > 0 ? insertTasks(rows, now, gate !== undefined) : Prisma.empty}
      ${
        !gate
          ? Prisma.sql`SELECT * FROM tasks`
          : rows.length === 0
            ? Prisma.sql`SELECT gate.id AS "gateId" FROM gate`
            : Prisma.sql`SELECT gate.id AS "gateId", tasks.* FROM gate LEFT JOIN fresh ON fresh."gateId" = gate.id LEFT JOIN tasks ON tasks.id = fresh.id`
      }`);
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
      if (final && task.notificationsPending) await this.notifier.taskFinished(task).catch(() => undefined);
    }
  }
}
