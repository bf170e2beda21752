// A task's events as one ordered stream: first the persisted events after a cursor, then live ones, with no
// gap and no duplicate across the boundary. The live listener is attached before the database is read, and
// every live event is checked against the last sequence number delivered: older ones are dropped, and a jump
// ahead (a message missed during a reconnect) is filled from the database. A quiet stream also re-reads the
// database now and then, so even a lost final event is delivered. Ends after the task's final status.
import type { PrismaClient } from '../../db/prisma.js';
import type { TaskEventMessage } from '../../events/task-event-bus.js';
import type { TaskEventKind } from '../../generated/prisma/enums.js';
import { finalTaskStatuses } from './task-states.js';

export interface StreamedTaskEvent {
  taskId: string;
  seq: number;
  kind: TaskEventKind;
  payload: unknown;
  createdAt: Date;
}

const pageSize = 500;

function isFinal(event: StreamedTaskEvent): boolean {
  const status = (event.payload as { status?: string } | null)?.status;
  return event.kind === 'STATUS' && (finalTaskStatuses as readonly string[]).includes(status ?? '');
}

export async function* streamTaskEvents(
  prisma: PrismaClient,
  live: AsyncIterableIterator<TaskEventMessage>,
  taskId: string,
  afterSeq: number,
  options: { quietRecheckMs: number } = { quietRecheckMs: 5000 },
): AsyncGenerator<StreamedTaskEvent> {
  let last = afterSeq;
  let finished = false;

  async function* fromDatabase(): AsyncGenerator<StreamedTaskEvent> {
    for (;;) {
      const rows = await prisma.taskEvent.findMany({ where: { taskId, seq: { gt: last } }, orderBy: { seq: 'asc' }, take: pageSize });
      for (const row of rows) yield { taskId, seq: row.seq, kind: row.kind, payload: row.payload, createdAt: row.createdAt };
      if (rows.length < pageSize) return;
    }
  }

  try {
    for await (const event of fromDatabase()) {
      yield event;
      last = event.seq;
      if (isFinal(event)) return;
    }
    // A task that ended before its final STATUS event was written cannot exist, but one that was already
    // final with the cursor at its end must still complete.
    const task = await prisma.task.findUnique({ where: { id: taskId }, select: { status: true, lastEventSeq: true } });
    if (!task) return;
    if ((finalTaskStatuses as readonly string[]).includes(task.status) && last >= task.lastEventSeq) return;

    let pending = live.next();
    while (!finished) {
      let timer: NodeJS.Timeout | undefined;
      const quiet = new Promise<'quiet'>((resolve) => {
        timer = setTimeout(() => resolve('quiet'), options.quietRecheckMs);
      });
      const next = await Promise.race([pending, quiet]);
      clearTimeout(timer);
      if (next === 'quiet' || (next.value && next.value.seq > last + 1)) {
        for await (const event of fromDatabase()) {
          yield event;
          last = event.seq;
          if (isFinal(event)) return;
        }
        if (next === 'quiet') continue;
      }
      if (next.done) return;
      pending = live.next();
      const message = next.value;
      if (message.seq <= last) continue;
      const event: StreamedTaskEvent = { ...message, createdAt: new Date(message.createdAt) };
      yield event;
      last = event.seq;
      if (isFinal(event)) finished = true;
    }
  } finally {
    await live.return?.();
  }
}
