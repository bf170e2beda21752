import { builder } from '../builder.js';
import { ConflictError, InvalidStateError, NotFoundError, UnavailableError } from '../domain/errors.js';
import { SubmitTaskInput, TaskFilterInput, TaskNode } from '../schema/task.js';
import { actor, parseNodeId } from './ids.js';

builder.queryFields((t) => ({
  tasks: t.prismaConnection({
    type: 'Task',
    cursor: 'id',
    authScopes: { read: true },
    description: 'Tasks, newest first.',
    args: { filter: t.arg({ type: TaskFilterInput }) },
    totalCount: (_parent, args, ctx) => ctx.services.tasks.count(args.filter ?? {}),
    resolve: (query, _root, args, ctx) => ctx.services.tasks.list(args.filter ?? {}, query),
  }),
  task: t.prismaField({
    type: 'Task',
    nullable: true,
    authScopes: { read: true },
    args: { id: t.arg.id({ required: true, description: 'The task\'s id (global id or UUID).' }) },
    resolve: (query, _root, args, ctx) =>
      ctx.services.tasks.find(parseNodeId(args.id, 'Task', ['id']), query),
  }),
}));

builder.mutationFields((t) => ({
  submitTask: t.field({
    type: TaskNode,
    description: 'Validates and queues a task. With a future runAt it is SCHEDULED until then.',
    authScopes: { submitTasks: true },
    args: { input: t.arg({ type: SubmitTaskInput, required: true }) },
    errors: { types: [NotFoundError, ConflictError, UnavailableError], dataField: { name: 'task' } },
    resolve: (_root, { input }, ctx) => ctx.services.tasks.submit(actor(ctx), { ...input, source: 'API' }),
  }),
  cancelTask: t.field({
    type: TaskNode,
    authScopes: { cancelTasks: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError, InvalidStateError, UnavailableError], dataField: { name: 'task' } },
    resolve: (_root, args, ctx) => ctx.services.tasks.cancel(actor(ctx), parseNodeId(args.id, 'Task', ['id'])),
  }),
  retryTask: t.field({
    type: TaskNode,
    description: 'Queues a FAILED or CANCELLED task again as a new attempt; its event log continues.',
    authScopes: { retryTasks: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError, InvalidStateError, UnavailableError], dataField: { name: 'task' } },
    resolve: (_root, args, ctx) => ctx.services.tasks.retry(actor(ctx), parseNodeId(args.id, 'Task', ['id'])),
  }),
}));
