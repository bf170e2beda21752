import { builder } from '../builder.js';
import { nextFiring } from '../domain/tasks/schedule-service.js';
import { TaskQueueEnum, TaskTypeEnum } from './enums.js';
import { OrgNode } from './org.js';
export const ScheduleNode = builder.prismaNode('Schedule', {
    description: 'A recurring task: each firing of the cron pattern creates a Task with source SCHEDULE.',
    id: { field: 'id' },
    authScopes: { read: true },
    fields: (t) => ({
        type: t.expose('type', { type: TaskTypeEnum }),
        org: t.relation('org', { type: OrgNode }),
        params: t.expose('input', { type: 'JSON' }),
        cron: t.exposeString('cron'),
        timezone: t.exposeString('timezone'),
        nextRunAt: t.field({ type: 'DateTime', resolve: (schedule) => nextFiring(schedule.cron, schedule.timezone) }),
        queue: t.expose('queue', { type: TaskQueueEnum }),
        priority: t.exposeInt('priority'),
        maxAttempts: t.exposeInt('maxAttempts'),
        createdBy: t.exposeString('createdBy'),
        lastFiredAt: t.expose('lastFiredAt', { type: 'DateTime', nullable: true }),
        createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
});
export const ScheduleTaskInput = builder.inputType('ScheduleTaskInput', {
    fields: (t) => ({
        type: t.field({ type: TaskTypeEnum, required: true }),
        org: t.string({ required: true, description: 'Alias of the org to act on.' }),
        params: t.field({ type: 'JSON', description: 'Parameters of the task type, as for submitTask.' }),
        cron: t.string({
            required: true,
            description: 'Cron pattern: minute hour day-of-month month day-of-week (or 6 fields with seconds first).',
        }),
        timezone: t.string({ description: 'IANA time zone the pattern is read in; default UTC.' }),
        queue: t.field({ type: TaskQueueEnum }),
        priority: t.int(),
        maxAttempts: t.int(),
        retryBackoffMs: t.int(),
        timeoutMs: t.int(),
    }),
});
export const RemovedScheduleRef = builder.objectRef('RemovedSchedule').implement({
    fields: (t) => ({ id: t.exposeID('id', { description: 'Raw id of the removed schedule.' }) }),
});
