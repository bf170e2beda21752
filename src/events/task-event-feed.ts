// The live side of task events on an API replica: one Redis subscriber connection per replica, fanned out
// in-process to every GraphQL subscription that listens (through @graphql-yoga/redis-event-target). The
// channels are the ones RedisTaskEventPublisher publishes to, from any API replica or worker.
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import { defaultFeedCapacity, feedSubscription, type FeedIterator, type FeedTarget } from './feed-subscription.js';
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
 * the rest. Losing such a command at close is harmless: here each is observed. The last SUBSCRIBE of each channel
 * is kept in `subscribes`, for subscriptions to wait for.
 */
function withHandledCommands(client: Redis, subscribes?: Map<string, Promise<unknown>>): Redis {
  const observed = <T>(promise: Promise<T>): Promise<T> => {
    promise.catch(() => undefined);
    return promise;
  };
  const adapter = {
    on: (event: string, listener: (...args: unknown[]) => void) => {
      client.on(event, listener);
      return adapter;
    },
    subscribe: (...channels: string[]) => {
      const command = observed(client.subscribe(...channels));
      for (const channel of channels) subscribes?.set(channel, command);
      return command;
    },
    unsubscribe: (...channels: string[]) => {
      for (const channel of channels) subscribes?.delete(channel);
      return observed(client.unsubscribe(...channels));
    },
    publish: (channel: string, message: string) => observed(client.publish(channel, message)),
  };
  return adapter as unknown as Redis;
}

export class TaskEventFeed {
  private readonly target: FeedTarget;
  /** The SUBSCRIBE of each channel listened to. */
  private readonly subscribes = new Map<string, Promise<unknown>>();
  private readonly subscribeClient: Redis;

  constructor(
    redisUrl: string,
    private readonly prefix: string,
    /** Messages each subscription holds for a reader that has fallen behind (feed-subscription.ts). */
    private readonly capacity: number = defaultFeedCapacity,
  ) {
    this.subscribeClient = new Redis(redisUrl, { connectionName: 'switchyard-feed-sub', maxRetriesPerRequest: null });
    this.subscribeClient.on('error', () => undefined);
    const subscriber = withHandledCommands(this.subscribeClient, this.subscribes);
    this.target = createRedisEventTarget({
      // The feed only listens (events are published with the command connection: task-event-bus.ts), so the
      // event target's publishing client, which it needs to be built, is never used: no connection of its own.
      publishClient: subscriber,
      subscribeClient: subscriber,
      serializer: lenientJson,
    }) as unknown as FeedTarget;
  }

  private subscription<T>(channel: string): FeedIterator<T> {
    return feedSubscription<T>(this.target, channel, this.capacity, () => this.subscribes.get(channel) ?? Promise.resolve());
  }

  /** Events of one task, from now on. */
  task(taskId: string): FeedIterator<TaskEventMessage> {
    return this.subscription(`${this.prefix}:taskEvent:${taskId}`);
  }

  /** Events of every task, from now on. */
  all(): FeedIterator<TaskEventMessage> {
    return this.subscription(`${this.prefix}:taskEvents`);
  }

  /** Requests to every process (cancellations, token revocations). */
  private control(): FeedIterator<ControlMessage> {
    return this.subscription(controlChannel(this.prefix));
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
    this.subscribeClient.disconnect();
  }
}
