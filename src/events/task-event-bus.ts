// Task events travel from whoever writes them (API or worker) to every API replica through Redis pub/sub.
// Postgres holds the durable log (TaskEvent rows); pub/sub only announces rows that are already committed,
// so a subscriber that misses a message can always catch up from the database by sequence number.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TaskEventKind, TaskQueue, TaskSource, TaskStatus, TaskType } from '../generated/prisma/enums.js';

export interface TaskEventMessage {
  taskId: string;
  seq: number;
  kind: TaskEventKind;
  payload: unknown;
  createdAt: string;
  /** The task as it was right after the event, for dashboards that filter on it. */
  task: { status: TaskStatus; type: TaskType; queue: TaskQueue; source: TaskSource; orgAlias: string; progress: number };
}

export interface TaskEventPublisher {
  publish(events: TaskEventMessage[]): Promise<void>;
}

export function taskEventChannel(prefix: string, taskId: string): string {
  return `${prefix}:taskEvent:${taskId}`;
}

export function allTaskEventsChannel(prefix: string): string {
  return `${prefix}:taskEvents`;
}

/** Requests to every process: to workers, e.g. to abort a running task; to API replicas, e.g. to drop a cache. */
export function controlChannel(prefix: string): string {
  return `${prefix}:control`;
}

export type ControlMessage =
  | { type: 'cancel'; taskId: string }
  | { type: 'token-revoked'; tokenId: string }
  /** A webhook source, its secret or its rules changed: API replicas drop what they cached of it. */
  | { type: 'webhook-source-changed'; sourceId: string }
  /** Notification subscribers were added or removed: API replicas and workers drop their cached list. */
  | { type: 'notification-subscribers-changed' };

/**
 * A control message as published, or null for anything else: the channel is open to any Redis client, and a
 * subscriber handles it inside the Redis client's message handler, where a throw ends the process.
 */
export function parseControlMessage(raw: string): ControlMessage | null {
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return null;
  }
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' ? (message as ControlMessage) : null;
}

// Publishes each event to its task's channel and to the channel of all task events, in the order given, in
// one command: one round trip and one socket write per announcement instead of two per event, on the path of
// every state change of every task.
const publishScript = `
for i = 2, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  redis.call('PUBLISH', ARGV[1], ARGV[i + 1])
end
return 0`;
const publishScriptSha = createHash('sha1').update(publishScript).digest('hex');

export class RedisTaskEventPublisher implements TaskEventPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async publish(events: TaskEventMessage[]): Promise<void> {
    if (events.length === 0) return;
    const args = [allTaskEventsChannel(this.prefix), ...events.flatMap((event) => [taskEventChannel(this.prefix, event.taskId), JSON.stringify(event)])];
    // EVALSHA, not a pipeline or MULTI: on a connection BullMQ has defined its scripts on, ioredis copies all
    // of them (64) into every pipeline object (and ioredis's defineCommand would add this one to that set). A server that does not know the script yet (first use, or after
    // a restart or SCRIPT FLUSH) gets its text once.
    await this.redis.evalsha(publishScriptSha, 0, ...args).catch((error: Error) => {
      if (!error.message.startsWith('NOSCRIPT')) throw error;
      return this.redis.eval(publishScript, 0, ...args);
    });
  }

  async control(message: ControlMessage): Promise<void> {
    await this.redis.publish(controlChannel(this.prefix), JSON.stringify(message));
  }
}
