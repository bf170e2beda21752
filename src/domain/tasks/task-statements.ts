// The task journal's writes as single SQL statements. Every task's life runs through these on the dispatch
// path (submit, claim, each progress report, settle), and with Prisma's ORM each was a transaction of 3–5
// statements, each compiled by Prisma's query compiler in JS: a few milliseconds of CPU apiece, which capped
// how many short tasks a worker could run. One data-modifying CTE per change is one round trip, atomic on its
// own (a single statement is its own transaction) and still serialised per task by the UPDATE's row lock.
//
// Only parameterised tagged templates (Prisma.sql) are used; values never become SQL text. Timestamps are
// taken from this process's clock, as the ORM does, and columns are named explicitly so a schema change that
// these statements miss fails loudly in the tests instead of writing the wrong column.
import { Prisma } from '../../db/prisma.js';
import type { Org } from '../../generated/prisma/client.js';
import type { TaskStatus } from '../../generated/prisma/enums.js';
import type { NewTask, PendingEvent } from './task-journal.js';

/** The task columns a journal change may set (undefined leaves a column alone). */
export interface TaskChanges {
  status?: TaskStatus;
  attempts?: number;
  progress?: number;
  phase?: string | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  result?: unknown;
  workerId?: string | null;
  childPid?: number | null;
  startedAt?: Date | null;
  finishedAt?: Date | null;
  runAt?: Date | null;
  cancelRequestedAt?: Date | null;
  notificationsPending?: boolean;
}

/** What a worker needs of a task's org. */
export type OrgRef = Pick<Org, 'id' | 'alias' | 'instanceUrl' | 'secretRef'>;

/** SQL for one value of a column, typed the way Postgres stores it. */
const columnValue: { [K in keyof TaskChanges]-?: (value: NonNullable<TaskChanges[K]> | null) => Prisma.Sql } = {
  status: (value) => Prisma.sql`CAST(${value} AS "TaskStatus")`,
  attempts: (value) => Prisma.sql`${value}::int`,
  progress: (value) => Prisma.sql`${value}::int`,
  phase: (value) => Prisma.sql`${value}::text`,
  errorCode: (value) => Prisma.sql`${value}::text`,
  errorMessage: (value) => Prisma.sql`${value}::text`,
  // A JSON null result is stored as SQL NULL, as the ORM reads both back as null.
  result: (value) => (value === null ? Prisma.sql`NULL` : Prisma.sql`${JSON.stringify(value)}::jsonb`),
  workerId: (value) => Prisma.sql`${value}::text`,
  childPid: (value) => Prisma.sql`${value}::int`,
  startedAt: (value) => timestamp(value),
  finishedAt: (value) => timestamp(value),
  runAt: (value) => timestamp(value),
  cancelRequestedAt: (value) => timestamp(value),
  notificationsPending: (value) => Prisma.sql`${value}::boolean`,
};

function timestamp(value: Date | null): Prisma.Sql {
  return Prisma.sql`${value}::timestamp(3)`;
}

function assignments(changes: TaskChanges, now: Date): Prisma.Sql[] {
  const sets = [Prisma.sql`"updatedAt" = ${timestamp(now)}`];
  for (const [column, value] of Object.entries(changes) as [keyof TaskChanges, unknown][]) {
    if (value === undefined) continue;
    const toSql = columnValue[column] as ((value: unknown) => Prisma.Sql) | undefined;
    if (!toSql) throw new Error(`Task column ${column} cannot be changed by the journal`);
    sets.push(Prisma.sql`${Prisma.raw(`"${column}"`)} = ${toSql(value)}`);
  }
  return sets;
}

/**
 * The events' rows, numbered after the task's previous lastEventSeq (read from `moved`, the updated row), all
 * stamped `now`. A data-modifying CTE runs to completion even though the outer query does not read it.
 */
function insertEvents(events: PendingEvent[], now: Date, attemptInStatus = false): Prisma.Sql {
  const kinds = events.map((event) => event.kind);
  const payloads = events.map((event) => JSON.stringify(event.payload));
  const payload = attemptInStatus
    ? Prisma.sql`CASE WHEN e.kind = 'STATUS' THEN e.payload::jsonb || jsonb_build_object('attempt', moved."attempts") ELSE e.payload::jsonb END`
    : Prisma.sql`e.payload::jsonb`;
  return Prisma.sql`
    INSERT INTO "TaskEvent" ("taskId", "seq", "kind", "payload", "createdAt")
    SELECT moved."id", moved."lastEventSeq" - ${events.length}::int + e.ord::int, CAST(e.kind AS "TaskEventKind"), ${payload}, ${timestamp(now)}
    FROM moved, unnest(${kinds}::text[], ${payloads}::text[]) WITH ORDINALITY AS e(kind, payload, ord)`;
}

/**
 * What a worker needs of a task's org as one JSON column (null when the org was removed): `o` is the
 * joined "Org" row.
 */
export const orgRefColumn = Prisma.sql`CASE WHEN o."id" IS NULL THEN NULL
  ELSE json_build_object('id', o."id", 'alias', o."alias", 'instanceUrl', o."instanceUrl", 'secretRef', o."secretRef") END AS "org"`;

/** Guards and extras of a task change (TaskJournal.change). */
export interface ChangeOptions {
  /** Give the task a new BullMQ job id, `<id>-<seq of the first event>` (unique per task). */
  newJob?: boolean;
  /** Only when this is the task's current BullMQ job (a worker claiming the job it was handed). */
  jobId?: string;
  /** Only when the task's org still exists. */
  orgExists?: boolean;
  /** Count an attempt (attempts + 1); STATUS events carry the new number as `attempt`. */
  countAttempt?: boolean;
  /**
   * Only while the task is still this run: claimed by this worker at this attempt. A worker presumed dead (cut
   * off from Redis for longer than its heartbeat lasts) whose run another worker took over must not write into
   * the new run when it comes back.
   */
  run?: RunGuard;
}

/** A run of a task, as its claim left it. */
export interface RunGuard {
  workerId: string;
  attempts: number;
}

export interface ChangeStatement extends ChangeOptions {
  taskId: string;
  /** Only when the task's status is one of these (any status when null). */
  from: readonly TaskStatus[] | null;
  changes: TaskChanges;
  events: PendingEvent[];
  /** Return the task's org too, as an `org` column (see orgRefColumn). */
  withOrg?: boolean;
  now: Date;
}

/** UPDATE … RETURNING the task, with its events appended, in one statement. Returns no row when a guard failed. */
export function changeTask(statement: ChangeStatement): Prisma.Sql {
  const { taskId, from, jobId, orgExists, changes, events, newJob, countAttempt, run, withOrg, now } = statement;
  const sets = assignments(changes, now);
  sets.push(Prisma.sql`"lastEventSeq" = "lastEventSeq" + ${events.length}::int`);
  if (countAttempt) {
    if (changes.attempts !== undefined) throw new Error('A journal change either sets attempts or counts one, not both');
    sets.push(Prisma.sql`"attempts" = "attempts" + 1`);
  }
  // In SET, "lastEventSeq" is still the old value, so + 1 is the first new event's seq.
  if (newJob) sets.push(Prisma.sql`"jobId" = "id"::text || '-' || ("lastEventSeq" + 1)::text`);
  const guards = [Prisma.sql`"id" = ${taskId}::uuid`];
  if (from) guards.push(Prisma.sql`"status" = ANY(CAST(${[...from]}::text[] AS "TaskStatus"[]))`);
  if (jobId !== undefined) guards.push(Prisma.sql`"jobId" = ${jobId}`);
  if (run) guards.push(Prisma.sql`"workerId" = ${run.workerId} AND "attempts" = ${run.attempts}::int`);
  if (orgExists) guards.push(Prisma.sql`EXISTS (SELECT 1 FROM "Org" WHERE "Org"."id" = "Task"."orgId")`);
  return Prisma.sql`
    WITH moved AS (
      UPDATE "Task" SET ${Prisma.join(sets, ', ')} WHERE ${Prisma.join(guards, ' AND ')} RETURNING *
    )${events.length > 0 ? Prisma.sql`, written AS (${insertEvents(events, now, countAttempt)})` : Prisma.empty}
    ${withOrg ? Prisma.sql`SELECT moved.*, ${orgRefColumn} FROM moved LEFT JOIN "Org" o ON o."id" = moved."orgId"` : Prisma.sql`SELECT * FROM moved`}`;
}

/**
 * The CTEs `fresh` (the new rows), `tasks` (their INSERT) and the INSERT of their first events. The rows travel as
 * ONE jsonb parameter, unpacked by jsonb_to_recordset: Prisma's query compiler spends about 2 µs of CPU on every
 * parameter it is given, so a row's 21 values as parameters of their own cost more than the row's whole INSERT.
 */
export function insertTasks(rows: Array<NewTask & { id: string; first: PendingEvent }>, now: Date, gated: boolean): Prisma.Sql {
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
      idempotencyScope: row.idempotency?.scope ?? null,
      idempotencyKey: row.idempotency?.key ?? null,
      requestDigest: row.idempotency?.digest ?? null,
      firstEvent: row.first.payload,
      gateId: row.gateId ?? null,
    })),
  );
  return Prisma.sql`
    fresh AS (
      SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS row (
        id uuid, type "TaskType", status "TaskStatus", queue "TaskQueue", priority int, input jsonb, "maxAttempts" int,
        "backoffMs" int, "timeoutMs" int, source "TaskSource", "requestedBy" text, "runAt" timestamp(3), "jobId" text,
        "orgId" uuid, "orgAlias" text, "scheduleId" uuid, "idempotencyScope" text, "idempotencyKey" text,
        "requestDigest" text, "firstEvent" jsonb, "gateId" uuid)
    ),
    -- Each task's org as it is now: its alias was read when the request was validated, and a rename (updateOrg)
    -- may have committed since, or be under way. The lock waits for one under way and then reads its alias; a
    -- rename that comes after waits for this insert, and then renames these tasks with the org's others.
    orgs AS (
      SELECT id, alias FROM "Org" WHERE id IN (SELECT "orgId" FROM fresh) FOR KEY SHARE
    ),
    tasks AS (
      INSERT INTO "Task" (id, type, status, queue, priority, input, "maxAttempts", "backoffMs", "timeoutMs", source,
                          "requestedBy", "runAt", "jobId", "lastEventSeq", "orgId", "orgAlias", "scheduleId",
                          "idempotencyScope", "idempotencyKey", "requestDigest", "createdAt", "updatedAt")
      SELECT fresh.id, type, status, queue, priority, input, "maxAttempts", "backoffMs", "timeoutMs", source, "requestedBy",
             "runAt", "jobId", 1, "orgId", COALESCE(orgs.alias, "orgAlias"), "scheduleId", "idempotencyScope", "idempotencyKey",
             "requestDigest", ${now}::timestamp(3), ${now}::timestamp(3)
      -- No org row (removed meanwhile): the foreign key refuses the task (ORG_NOT_FOUND).
      FROM fresh LEFT JOIN orgs ON orgs.id = fresh."orgId" ${gated ? Prisma.sql`WHERE "gateId" IN (SELECT id FROM gate)` : Prisma.empty}
      -- A key its requester already used: that submit's task stands (the conflict waits for it to commit).
      ON CONFLICT ("idempotencyScope", "idempotencyKey") DO NOTHING
      RETURNING *
    ),
    events AS (
      INSERT INTO "TaskEvent" ("taskId", seq, kind, payload, "createdAt")
      SELECT fresh.id, 1, 'STATUS', fresh."firstEvent", ${now}::timestamp(3) FROM fresh JOIN tasks ON tasks.id = fresh.id
    )`;
}
