// The live side of task events on an API replica: one Redis subscriber connection per replica, fanned out
// in-process to every GraphQL subscription that listens (through @graphql-yoga/redis-event-target). The
// channels are the ones RedisTaskEventPublisher publishes to, from any API replica or worker.
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import { defaultFeedCapacity, feedSubscription, type FeedTarget } from './feed-subscription.js';
import { controlChannel, type ControlMessage, type TaskEventMessage } from './task-event-bus.js';

/**
 * Messages are JSON. One that is not (nothing here publishes such a thing, but the channels are open to any Redis
 * client) is dropped: the event target parses inside the Redis client's message handler, where a throw would
 * end the process.
 */
const lenientJson = {
  stringify: JSON.stringify,
  parse: (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  },
};

/**
 * A client as the event target uses it (on, subscribe, unsubscribe, publish). The event target leaves the promises
 * of its commands unobserved, so one still pending when the feed closes (say, the SUBSCRIBE of a replica that
 * failed to start, closed at once) would be rejected with nobody listening, and end the process before it closed
 * the rest. Losing such a command at close is harmless: here each is observed.
 */
function withHandledCommands(client: Redis): Redis {
  const observed = <T>(promise: Promise<T>): Promise<T> => {
    promise.catch(() => undefined);
    return promise;
  };
  const adapter = {
    on: (event: string, listener: (...args: unknown[]) => void) => {
      client.on(event, listener);
      return adapter;
    },
    subscribe: (...channels: string[]) => observed(client.subscribe(...channels)),
    unsubscribe: (...channels: string[]) => observed(client.unsubscribe(...channels)),
    publish: (channel: string, message: string) => observed(client.publish(channel, message)),
  };
  return adapter as unknown as Redis;
}

export class TaskEventFeed {
  private readonly target: FeedTarget;
  private readonly publishClient: Redis;
  private readonly subscribeClient: Redis;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
    /** Messages each subscription holds for a reader that has fallen behind (feed-subscription.ts). */
    private readonly capacity: number = defaultFeedCapacity,
  ) {
    // Separate connections: a Redis connection in subscriber mode cannot publish.
    this.publishClient = new Redis(redisUrl, { connectionName: 'switchyard-feed-pub', maxRetriesPerRequest: null });
    this.subscribeClient = new Redis(redisUrl, { connectionName: 'switchyard-feed-sub', maxRetriesPerRequest: null });
    for (const client of [this.publishClient, this.subscribeClient]) client.on('error', () => undefined);
    this.target = createRedisEventTarget({
      publishClient: withHandledCommands(this.publishClient),
      subscribeClient: withHandledCommands(this.subscribeClient),
      serializer: lenientJson,
    }) as unknown as FeedTarget;
  }

  /** Events of one task, from now on. */
  task(taskId: string): AsyncIterableIterator<TaskEventMessage> {
    return feedSubscription(this.target, `${this.prefix}:taskEvent:${taskId}`, this.capacity);
  }

  /** Events of every task, from now on. */
  all(): AsyncIterableIterator<TaskEventMessage> {
    return feedSubscription(this.target, `${this.prefix}:taskEvents`, this.capacity);
  }

  /** Requests to every process (cancellations, token revocations). */
  private control(): AsyncIterableIterator<ControlMessage> {
    return feedSubscription(this.target, controlChannel(this.prefix), this.capacity);
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
