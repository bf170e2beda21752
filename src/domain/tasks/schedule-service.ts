// Recurring tasks. The Schedule row is the source of truth; BullMQ's job scheduler (one per schedule, on
// the `schedules` queue) fires it on its cron pattern, and each firing creates an ordinary Task.
import { CronExpressionParser } from 'cron-parser';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Schedule, Task } from '../../generated/prisma/client.js';
import type { TaskQueues } from '../../queues/task-queues.js';
import type { AuditService } from '../audit/audit-service.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { NotFoundError, unlessGone, ValidationFailedError, withQueue } from '../errors.js';
import { uuidFromName } from '../ids.js';
import { unlessOrgRemoved } from '../orgs/org-removed.js';
import type { SubmitTaskInput, TaskService } from './task-service.js';

export interface ScheduleTaskInput extends Omit<SubmitTaskInput, 'runAt' | 'source'> {
  cron: string;
  timezone?: string | null;
}

function scheduleNotFound(): NotFoundError {
  return new NotFoundError('SCHEDULE_NOT_FOUND', 'No schedule with that id');
}

const timeZoneExamples = 'such as Europe/Paris, Asia/Kolkata or UTC';

/**
 * Refuses what is not a time zone name as the IANA database spells it. Intl.DateTimeFormat is the judge, not
 * Intl.supportedValuesOf('timeZone'): on Node 20 that lists only ICU's canonical ids, often the old names
 * (Asia/Calcutta, Europe/Kiev), so current names, links such as US/Eastern, and UTC itself were missing from it.
 * Intl.DateTimeFormat knows every name of the time zone database, and it is what cron-parser (through luxon)
 * reads the zone with, both for nextRunAt here and in BullMQ's job scheduler, which fires the schedule: a
 * zone that passes here is one the schedule fires in.
 */
function checkTimeZone(timezone: string): void {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
  } catch {
    throw ValidationFailedError.single(['timezone'], `must be an IANA time zone ${timeZoneExamples}`);
  }
  // Intl also matches names case-insensitively. The name is stored and shown as given, so it must be spelled
  // as the database spells it: one zone, one spelling. Intl names a zone's canonical id, which tells the
  // right spelling when only the case differs. For links (which it resolves to another id), every part of a
  // database name starts with a capital, which catches names typed in lower case; it also keeps out UTC
  // offsets such as +05:30, which newer Intl versions accept as zones.
  if (timezone !== resolved && timezone.toLowerCase() === resolved.toLowerCase()) {
    throw ValidationFailedError.single(['timezone'], `must be spelled as in the IANA time zone database: ${resolved}`);
  }
  if (!timezone.split('/').every((part) => /^[A-Z]/.test(part))) {
    throw ValidationFailedError.single(['timezone'], `must be spelled as in the IANA time zone database, ${timeZoneExamples}`);
  }
}

/** The pattern with its fields separated by single spaces, as it is stored (a pasted newline included). */
export function normaliseCron(cron: string): string {
  return cron.trim().split(/\s+/).join(' ');
}

function parseCron(cron: string, timezone: string, from: Date) {
  try {
    return CronExpressionParser.parse(normaliseCron(cron), { tz: timezone, currentDate: from });
  } catch (error) {
    throw ValidationFailedError.single(['cron'], `is not a valid cron pattern: ${(error as Error).message}`);
  }
}

/**
 * The next firing after `from`. Stored schedules passed the checks of their day, which newer versions may have
 * tightened (see checkNewSchedule): their patterns are only parsed here, so each still shows its next firing.
 */
export function nextFiring(cron: string, timezone: string, from = new Date()): Date {
  return parseCron(cron, timezone, from).next().toDate();
}

/**
 * What a new schedule's pattern (already normalised) and zone must be, or a VALIDATION_FAILED naming the bad
 * field. Among its next firings none may follow the one before sooner than `minSeconds`: a slip such as
 * `* * * * * *` (every second) would otherwise create a task, say a deployment, every second.
 */
function checkNewSchedule(cron: string, timezone: string, minSeconds: number): void {
  checkTimeZone(timezone);
  const fields = cron.split(' ');
  if (fields.length < 5 || fields.length > 6) {
    throw ValidationFailedError.single(['cron'], 'must have 5 fields (minute hour day month weekday) or 6 with seconds first');
  }
  // cron-parser reads H as a value drawn at random each time the pattern is parsed (without a seed), and BullMQ
  // parses it on its own: the schedule would fire at another time than nextRunAt shows, which changes on every read.
  if (fields.some((field) => field.split(',').some((part) => /^H(\(|\/|$)/i.test(part)))) {
    throw ValidationFailedError.single(['cron'], 'must not use H (a hashed value): name the minute, hour or day');
  }
  const firings = parseCron(cron, timezone, new Date()).take(20).map((firing) => firing.getTime());
  // A day no month has (31 April), say: BullMQ would make no scheduler for it, and nextRunAt would have none.
  if (firings.length === 0) throw ValidationFailedError.single(['cron'], 'never fires (no date matches every field)');
  const shortest = Math.min(...firings.slice(1).map((time, index) => time - firings[index]!));
  if (shortest < minSeconds * 1000) {
    throw ValidationFailedError.single(['cron'], `fires every ${shortest / 1000} s at times; schedules may fire at most every ${minSeconds} s (SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS)`);
  }
}

/** What a schedule's audit entries record: what it runs, where and when (not its params). */
function auditDetails(schedule: Schedule, orgAlias: string): Prisma.InputJsonValue {
  return { type: schedule.type, org: orgAlias, cron: schedule.cron, timezone: schedule.timezone };
}

export class ScheduleService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly queues: TaskQueues,
    private readonly tasks: TaskService,
    /** Shortest time allowed between two firings of a schedule (SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS). */
    private readonly minIntervalSeconds: number,
    private readonly audit: AuditService,
  ) {}

  async create(actor: Principal, input: ScheduleTaskInput): Promise<Schedule> {
    const timezone = input.timezone ?? 'UTC';
    const cron = normaliseCron(input.cron);
    checkNewSchedule(cron, timezone, this.minIntervalSeconds);
    const { spec } = await this.tasks.validate(input);
    // A schedule deploys to its org on its own from now on: who made it is audited with it, in its transaction.
    const written = this.prisma.$transaction(async (tx) => {
      const created = await tx.schedule.create({
      data: {
        type: spec.type,
        orgId: spec.orgId,
        input: spec.params,
        cron,
        timezone,
        queue: spec.queue,
        priority: spec.priority,
        maxAttempts: spec.maxAttempts,
        backoffMs: spec.backoffMs,
        timeoutMs: spec.timeoutMs,
        createdBy: actorLabel(actor),
      },
      });
      await this.audit.record(tx, actor, 'schedule.create', 'Schedule', created.id, auditDetails(created, input.org));
      return created;
    });
    const schedule = await unlessOrgRemoved(written, 'Schedule_orgId_fkey', 'the schedule');
    try {
      await withQueue(() => this.queues.upsertScheduler(schedule.id, schedule.cron, schedule.timezone), 'create the schedule');
    } catch (error) {
      // Never made, so undone whole: the audit entry goes with the row it recorded (in one transaction), as the
      // row's own transaction would have taken it had the scheduler been part of it. It was visible meanwhile.
      await this.prisma.$transaction([
        this.prisma.auditEntry.deleteMany({ where: { action: 'schedule.create', targetId: schedule.id } }),
        this.prisma.schedule.delete({ where: { id: schedule.id } }),
      ]);
      throw error;
    }
    return schedule;
  }

  async remove(actor: Principal, scheduleId: string): Promise<Schedule> {
    const schedule = await this.prisma.schedule.findUnique({ where: { id: scheduleId }, include: { org: { select: { alias: true } } } });
    if (!schedule) throw scheduleNotFound();
    // The scheduler goes first: with Redis down the schedule stays whole (QUEUE_UNAVAILABLE), and no transaction is
    // held open across a Redis call. Of concurrent removals, each drops the scheduler (idempotent) and one deletes
    // the row; the others answer SCHEDULE_NOT_FOUND. A scheduler restored meanwhile (by a reconciler that still saw
    // the row) removes itself at its next firing, which finds no schedule (fire()).
    await withQueue(() => this.queues.removeScheduler(schedule.id), 'remove the schedule');
    await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          await tx.schedule.delete({ where: { id: schedule.id } });
          await this.audit.record(tx, actor, 'schedule.remove', 'Schedule', schedule.id, auditDetails(schedule, schedule.org.alias));
        }),
      scheduleNotFound,
    );
    return schedule;
  }

  async list<T extends Omit<Prisma.ScheduleFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.schedule.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  async count(): Promise<number> {
    return this.prisma.schedule.count();
  }

  /**
   * A firing: creates the schedule's task. A firing of a deleted schedule removes its scheduler instead.
   * `firingId` (the firing job's id, the same each time BullMQ hands the job over) makes it idempotent: a firing
   * handed over again, because its worker died after creating the task but before BullMQ recorded the firing
   * done, finds the task it created instead of creating a second one.
   */
  async fire(scheduleId: string, firingId?: string): Promise<Task | null> {
    const schedule = await this.prisma.schedule.findUnique({ where: { id: scheduleId }, include: { org: true } });
    if (!schedule) {
      await this.queues.removeScheduler(scheduleId);
      return null;
    }
    const taskId = firingId === undefined ? undefined : uuidFromName(`schedule-firing:${firingId}`);
    if (taskId !== undefined) {
      const created = await this.prisma.task.findUnique({ where: { id: taskId } });
      if (created) return created;
    }
    // updateMany: a schedule removed since it was read is no error, only no firing.
    const fired = await this.prisma.schedule.updateMany({ where: { id: schedule.id }, data: { lastFiredAt: new Date() } });
    if (fired.count === 0) return null;
    return this.tasks.create(
      {
        type: schedule.type,
        orgId: schedule.orgId,
        orgAlias: schedule.org.alias,
        params: schedule.input as Prisma.InputJsonValue,
        queue: schedule.queue,
        priority: schedule.priority,
        maxAttempts: schedule.maxAttempts,
        backoffMs: schedule.backoffMs,
        timeoutMs: schedule.timeoutMs,
      },
      { source: 'SCHEDULE', requestedBy: `schedule:${schedule.id}`, scheduleId: schedule.id },
      taskId,
    );
  }

  /**
   * Re-creates schedulers Redis lost (e.g. after a restart without persistence), and rewrites those an earlier
   * release wrote with another firing template (BullMQ's upsert keeps the next firing time), each on its own: one
   * that cannot be (its pattern or zone no longer parses after an upgrade) is reported and does not keep the others back.
   */
  async restoreSchedulers(): Promise<{ restored: number; failed: string[] }> {
    const schedules = await this.prisma.schedule.findMany();
    const result = { restored: 0, failed: [] as string[] };
    for (const schedule of schedules) {
      try {
        if (await this.queues.hasCurrentScheduler(schedule.id)) continue;
        await this.queues.upsertScheduler(schedule.id, schedule.cron, schedule.timezone);
        result.restored += 1;
      } catch {
        result.failed.push(schedule.id);
      }
    }
    return result;
  }
}
