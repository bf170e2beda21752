import { builder } from '../builder.js';
import { streamTaskEvents, type StreamedTaskEvent } from '../domain/tasks/task-event-stream.js';
import { filteredFeed } from '../events/feed-subscription.js';
import type { TaskEventMessage } from '../events/task-event-bus.js';
import { ValidationFailedError } from '../domain/errors.js';
import { TaskEventObject, TaskFilterInput, TaskNode } from '../schema/task.js';
import { parseNodeId } from './ids.js';

function parseCursor(after: string | null | undefined): number {
  if (after === null || after === undefined || after === '') return 0;
  if (!/^\d{1,9}$/.test(after)) throw ValidationFailedError.single(['after'], 'must be a cursor from TaskEvent.cursor');
  return Number(after);
}

builder.subscriptionFields((t) => ({
  taskEvents: t.field({
    type: TaskEventObject,
    description:
      'A task\'s events in order: those after `after` (all when omitted) from the log, then live ones, with no gap and no duplicate. Completes after the task\'s final status (the one its log ends with: a retried task\'s log goes on past the final status of the run before).',
    authScopes: { read: true },
    args: {
      taskId: t.arg.id({ required: true, description: 'The task\'s id (global id or UUID).' }),
      after: t.arg.string({ description: 'TaskEvent.cursor of the last event already seen.' }),
    },
    subscribe: async (_root, args, ctx) => {
      const taskId = parseNodeId(args.taskId, 'Task', ['taskId']);
      const afterSeq = parseCursor(args.after);
      // A task that does not exist is an error (TASK_NOT_FOUND), not a stream that completes at once with nothing in it.
      await ctx.services.tasks.require(taskId);
      return streamTaskEvents(ctx.services.prisma, () => ctx.feed.task(taskId), taskId, afterSeq);
    },
    resolve: (event: StreamedTaskEvent) => event as never,
  }),
  taskUpdated: t.field({
    type: TaskNode,
    description: 'Every change (status, progress, result) of tasks matching the filter, for dashboards.',
    authScopes: { read: true },
    args: { filter: t.arg({ type: TaskFilterInput }) },
    // Not an async generator: one waiting in `for await` for the next matching message ends only when that
    // comes (never, for a filter nothing matches), listening to every task event meanwhile. A filtered feed ends
    // its subscription as soon as its reader returns.
    subscribe: (_root, args, ctx) => {
      const filter = args.filter ?? {};
      return filteredFeed(() => ctx.feed.all(), (message: TaskEventMessage) => {
        if (message.kind === 'LOG') return false;
        const task = message.task;
        // As tasks(filter:) reads it: a list matches any of its values, an empty one none.
        if (filter.status && !filter.status.includes(task.status)) return false;
        if (filter.type && !filter.type.includes(task.type)) return false;
        if (filter.queue && !filter.queue.includes(task.queue)) return false;
        if (filter.source && !filter.source.includes(task.source)) return false;
        return filter.org === undefined || filter.org === null || filter.org === task.orgAlias;
      });
    },
    resolve: async (message: TaskEventMessage, _args, ctx) => {
      const task = await ctx.services.tasks.find(message.taskId);
      if (!task) throw new Error('Task vanished');
      return task;
    },
  }),
}));
