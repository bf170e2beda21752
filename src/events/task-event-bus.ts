// Task events travel from whoever writes them (API or worker) to every API replica through Redis pub/sub.
// Postgres holds the durable log (TaskEvent rows); pub/sub only announces rows that are already committed,
// so a subscriber that misses a message can always catch up from the database by sequence number.
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

export class RedisTaskEventPublisher implements TaskEventPublisher {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async publish(events: TaskEventMessage[]): Promise<void> {
    // Plain commands, not a pipeline: they still go out back to back in this order, and on a connection BullMQ
    // has defined its scripts on, ioredis copies all of them (64) into every pipeline object, which made a
    // pipeline cost four times the commands it carries.
    await Promise.all(
      events.flatMap((event) => {
        const json = JSON.stringify(event);
        return [this.redis.publish(taskEventChannel(this.prefix, event.taskId), json), this.redis.publish(allTaskEventsChannel(this.prefix), json)];
      }),
    );
  }

  async control(message: ControlMessage): Promise<void> {
    await this.redis.publish(controlChannel(this.prefix), JSON.stringify(message));
  }
}
