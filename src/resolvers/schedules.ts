import { builder } from '../builder.js';
import { NotFoundError, UnavailableError } from '../domain/errors.js';
import { RemovedScheduleRef, ScheduleNode, ScheduleTaskInput } from '../schema/schedule.js';
import { actor, parseNodeId } from './ids.js';

builder.queryField('schedules', (t) =>
  t.prismaConnection({
    type: 'Schedule',
    cursor: 'id',
    authScopes: { read: true },
    description: 'Recurring tasks, newest first.',
    totalCount: (_parent, _args, ctx) => ctx.services.schedules.count(),
    resolve: (query, _root, _args, ctx) => ctx.services.schedules.list(query),
  }),
);

builder.mutationFields((t) => ({
  scheduleTask: t.field({
    type: ScheduleNode,
    description: 'Creates a recurring task. Each firing creates a task with source SCHEDULE.',
    authScopes: { submitTasks: true },
    args: { input: t.arg({ type: ScheduleTaskInput, required: true }) },
    errors: { types: [NotFoundError, UnavailableError], dataField: { name: 'schedule' } },
    resolve: (_root, { input }, ctx) => ctx.services.schedules.create(actor(ctx), input),
  }),
  removeSchedule: t.field({
    type: RemovedScheduleRef,
    description: 'Stops a recurring task. Tasks it already created are not affected.',
    authScopes: { submitTasks: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError, UnavailableError], dataField: { name: 'removed' } },
    resolve: (_root, args, ctx) => ctx.services.schedules.remove(actor(ctx), parseNodeId(args.id, 'Schedule', ['id'])),
  }),
}));
