// Recurring tasks. The Schedule row is the source of truth; BullMQ's job scheduler (one per schedule, on
// the `schedules` queue) fires it on its cron pattern, and each firing creates an ordinary Task.
import { CronExpressionParser } from 'cron-parser';
import { actorLabel } from '../auth/principal.js';
import { NotFoundError, ValidationFailedError, withQueue } from '../errors.js';
/** The next firing after `from`, or a VALIDATION_FAILED naming the bad field. */
export function nextFiring(cron, timezone, from = new Date()) {
    if (!Intl.supportedValuesOf('timeZone').includes(timezone) && timezone !== 'UTC') {
        throw ValidationFailedError.single(['timezone'], 'must be an IANA time zone such as Europe/Paris or UTC');
    }
    const fields = cron.trim().split(/\s+/);
    if (fields.length < 5 || fields.length > 6) {
        throw ValidationFailedError.single(['cron'], 'must have 5 fields (minute hour day month weekday) or 6 with seconds first');
    }
    try {
        return CronExpressionParser.parse(cron, { tz: timezone, currentDate: from }).next().toDate();
    }
    catch (error) {
        throw ValidationFailedError.single(['cron'], `is not a valid cron pattern: ${error.message}`);
    }
}
export class ScheduleService {
    prisma;
    queues;
    tasks;
    constructor(prisma, queues, tasks) {
        this.prisma = prisma;
        this.queues = queues;
        this.tasks = tasks;
    }
    async create(actor, input) {
        const timezone = input.timezone ?? 'UTC';
        nextFiring(input.cron, timezone);
        const { spec } = await this.tasks.validate(input);
        const schedule = await this.prisma.schedule.create({
            data: {
                type: spec.type,
                orgId: spec.orgId,
                input: spec.params,
                cron: input.cron.trim(),
                timezone,
                queue: spec.queue,
                priority: spec.priority,
                maxAttempts: spec.maxAttempts,
                backoffMs: spec.backoffMs,
                timeoutMs: spec.timeoutMs,
                createdBy: actorLabel(actor),
            },
        });
        try {
            await withQueue(() => this.queues.upsertScheduler(schedule.id, schedule.cron, schedule.timezone), 'create the schedule');
        }
        catch (error) {
            await this.prisma.schedule.delete({ where: { id: schedule.id } });
            throw error;
        }
        return schedule;
    }
    async remove(scheduleId) {
        const schedule = await this.prisma.schedule.findUnique({ where: { id: scheduleId } });
        if (!schedule)
            throw new NotFoundError('SCHEDULE_NOT_FOUND', 'No schedule with that id');
        await withQueue(() => this.queues.removeScheduler(schedule.id), 'remove the schedule');
        await this.prisma.schedule.delete({ where: { id: schedule.id } });
        return schedule;
    }
    async list(query) {
        return this.prisma.schedule.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    }
    async count() {
        return this.prisma.schedule.count();
    }
    /** A firing: creates the schedule's task. A firing of a deleted schedule removes its scheduler instead. */
    async fire(scheduleId) {
        const schedule = await this.prisma.schedule.findUnique({ where: { id: scheduleId }, include: { org: true } });
        if (!schedule) {
            await this.queues.removeScheduler(scheduleId);
            return null;
        }
        await this.prisma.schedule.update({ where: { id: schedule.id }, data: { lastFiredAt: new Date() } });
        return this.tasks.create({
            type: schedule.type,
            orgId: schedule.orgId,
            orgAlias: schedule.org.alias,
            params: schedule.input,
            queue: schedule.queue,
            priority: schedule.priority,
            maxAttempts: schedule.maxAttempts,
            backoffMs: schedule.backoffMs,
            timeoutMs: schedule.timeoutMs,
        }, { source: 'SCHEDULE', requestedBy: `schedule:${schedule.id}`, scheduleId: schedule.id });
    }
    /** Re-creates schedulers Redis lost (e.g. after a restart without persistence). */
    async restoreSchedulers() {
        const schedules = await this.prisma.schedule.findMany();
        let restored = 0;
        for (const schedule of schedules) {
            if (await this.queues.hasScheduler(schedule.id))
                continue;
            await this.queues.upsertScheduler(schedule.id, schedule.cron, schedule.timezone);
            restored += 1;
        }
        return restored;
    }
}
