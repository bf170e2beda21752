// The live side of task events on an API replica: one Redis subscriber connection per replica, fanned out
// in-process to every GraphQL subscription that listens (through @graphql-yoga/redis-event-target). The
// channels are the ones RedisTaskEventPublisher publishes to, from any API replica or worker.
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { controlChannel, type ControlMessage, type TaskEventMessage } from './task-event-bus.js';

type Topics = Record<string, [TaskEventMessage | ControlMessage]>;

export class TaskEventFeed {
  private readonly pubSub: PubSub<Topics>;
  private readonly publishClient: Redis;
  private readonly subscribeClient: Redis;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
  ) {
    // Separate connections: a Redis connection in subscriber mode cannot publish.
    this.publishClient = new Redis(redisUrl, { connectionName: 'switchyard-feed-pub', maxRetriesPerRequest: null });
    this.subscribeClient = new Redis(redisUrl, { connectionName: 'switchyard-feed-sub', maxRetriesPerRequest: null });
    for (const client of [this.publishClient, this.subscribeClient]) client.on('error', () => undefined);
    this.pubSub = createPubSub<Topics>({
      eventTarget: createRedisEventTarget({ publishClient: this.publishClient, subscribeClient: this.subscribeClient }),
    });
  }

  /** Events of one task, from now on. */
  task(taskId: string): AsyncIterableIterator<TaskEventMessage> {
    return this.pubSub.subscribe(`${this.prefix}:taskEvent:${taskId}`) as unknown as AsyncIterableIterator<TaskEventMessage>;
  }

  /** Events of every task, from now on. */
  all(): AsyncIterableIterator<TaskEventMessage> {
    return this.pubSub.subscribe(`${this.prefix}:taskEvents`) as unknown as AsyncIterableIterator<TaskEventMessage>;
  }

  /** Requests to every process (cancellations, token revocations). */
  private control(): AsyncIterableIterator<ControlMessage> {
    return this.pubSub.subscribe(controlChannel(this.prefix)) as unknown as AsyncIterableIterator<ControlMessage>;
  }

  /**
   * Calls `handle` with each control message from now on, until the returned stop function is called. A
   * handler that throws ends nothing: the next message is handled as usual.
   */
  onControl(handle: (message: ControlMessage) => void): () => Promise<void> {
    const messages = this.control();
    void (async () => {
      for await (const message of messages) {
        try {
          handle(message);
        } catch {
          // the handler's own failure; later messages still count
        }
      }
    })().catch(() => undefined);
    return async () => {
      await messages.return?.();
    };
  }

  close(): void {
    this.publishClient.disconnect();
    this.subscribeClient.disconnect();
  }
}
