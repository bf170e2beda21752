// A task's events as one ordered stream: first the persisted events after a cursor, then live ones, with no
// gap and no duplicate across the boundary. The live listener is attached before the database is read, and the
// database is read once more when Redis confirms the subscription (an event published before that was not sent
// to it, but was written before it was published). Every live event is checked against the last sequence number
// delivered: older ones are dropped, and a jump ahead (a message missed during a reconnect) is filled from the
// database. A quiet stream also re-reads the
// database now and then, so even a lost final event is delivered. Ends after the task's final status: the one
// the log ends with, since a retried task's log goes on after the final status of the run before.
import { setTimeout as sleep } from 'node:timers/promises';
import { Repeater } from '@repeaterjs/repeater';
import type { PrismaClient } from '../../db/prisma.js';
import type { TaskEventMessage } from '../../events/task-event-bus.js';
import type { TaskEventKind } from '../../generated/prisma/enums.js';
import { StopSignal } from '../../stop-signal.js';
import { finalTaskStatuses } from './task-states.js';

export interface StreamedTaskEvent {
  taskId: string;
  seq: number;
  kind: TaskEventKind;
  payload: unknown;
  createdAt: Date;
}

const pageSize = 500;

/** How long a stream waits for Redis to confirm its live subscription before it first reads the log. */
const confirmationWaitMs = 250;

function isFinal(event: StreamedTaskEvent): boolean {
  const status = (event.payload as { status?: string } | null)?.status;
  return event.kind === 'STATUS' && (finalTaskStatuses as readonly string[]).includes(status ?? '');
}

/**
 * A Repeater rather than an async generator: a subscriber that goes away stops the stream at once (the wait
 * for live events is raced against `stop`), instead of only after the task's next event.
 *
 * The live side is subscribed when the stream is first read, not when it is made: a stream that is never read
 * (its HTTP client left before the response was sent, so nothing pulls or cancels it) then holds no listener.
 */
export function streamTaskEvents(
  prisma: PrismaClient,
  /** Subscribes the live side; `ready`, if given: when Redis confirmed that subscription (FeedIterator). */
  subscribe: () => AsyncIterableIterator<TaskEventMessage> & { ready?: Promise<void> },
  taskId: string,
  afterSeq: number,
  options: { quietRecheckMs: number } = { quietRecheckMs: 5000 },
): AsyncIterableIterator<StreamedTaskEvent> {
  return new Repeater<StreamedTaskEvent>(async (push, stop) => {
    const live = subscribe();
    let last = afterSeq;
    // Raced per pass (StopSignal): racing `stop` itself would keep every event delivered until the stream ends.
    const stopping = new StopSignal<'stopped'>();
    void stop.then(() => stopping.fire('stopped'));

    /** Delivers the persisted events after `last`; true when the last of them is a final status. */
    const fromDatabase = async (): Promise<boolean> => {
      let endsFinal = false;
      for (;;) {
        const rows = await prisma.taskEvent.findMany({ where: { taskId, seq: { gt: last } }, orderBy: { seq: 'asc' }, take: pageSize });
        for (const row of rows) {
          const event = { taskId, seq: row.seq, kind: row.kind, payload: row.payload, createdAt: row.createdAt };
          await push(event);
          last = event.seq;
          endsFinal = isFinal(event);
          if (stopping.fired) return true;
        }
        if (rows.length < pageSize) return endsFinal;
      }
    };

    /**
     * Delivers what the task's log has beyond `last`, if anything (asking the task first, so a quiet stream costs
     * one query); true when the stream is done: the task is gone, or it has ended with everything delivered. A
     * final status need not be the log's last event (a child's late LOG line can follow it), so this asks the
     * task rather than the events.
     */
    const catchUp = async (): Promise<boolean> => {
      const task = await prisma.task.findUnique({ where: { id: taskId }, select: { status: true, lastEventSeq: true } });
      if (!task) return true;
      if (task.lastEventSeq > last && (await fromDatabase())) return true;
      return (finalTaskStatuses as readonly string[]).includes(task.status) && last >= task.lastEventSeq;
    };

    try {
      // Redis confirms a subscription within a round trip: waiting that long (at most a moment) before the first
      // read of the log makes it the only one. Confirmed only later, the log is read once more then.
      const confirmedInTime = live.ready ? await Promise.race([live.ready.then(() => true), sleep(confirmationWaitMs, false, { ref: false })]) : true;
      let confirmed = confirmedInTime ? undefined : live.ready!.then(() => 'confirmed' as const);
      if (await catchUp()) return;

      let pending = live.next();
      while (!stopping.fired) {
        let timer: NodeJS.Timeout | undefined;
        const quiet = new Promise<'quiet'>((resolve) => {
          timer = setTimeout(() => resolve('quiet'), options.quietRecheckMs);
        });
        const next = await Promise.race([pending, quiet, stopping.next(), ...(confirmed ? [confirmed] : [])]);
        clearTimeout(timer);
        if (next === 'stopped') return;
        if (next === 'quiet' || next === 'confirmed') {
          if (next === 'confirmed') confirmed = undefined;
          if (await catchUp()) return;
          continue;
        }
        if (next.value && next.value.seq > last + 1 && (await fromDatabase())) return;
        if (next.done) return;
        pending = live.next();
        const message = next.value;
        if (message.seq <= last) continue;
        const event: StreamedTaskEvent = { ...message, createdAt: new Date(message.createdAt) };
        await push(event);
        last = event.seq;
        if (isFinal(event)) return;
      }
    } finally {
      void live.return?.();
      stop();
    }
  });
}
