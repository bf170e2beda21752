// The live side of task events on an API replica: one Redis subscriber connection per replica, fanned out
// in-process to every GraphQL subscription that listens (through @graphql-yoga/redis-event-target). The
// channels are the ones RedisTaskEventPublisher publishes to, from any API replica or worker.
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { controlChannel, type ControlMessage, type TaskEventMessage } from './task-event-bus.js';

type Topics = Record<string, [TaskEventMessage | ControlMessage]>;

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
      eventTarget: createRedisEventTarget({ publishClient: withHandledCommands(this.publishClient), subscribeClient: withHandledCommands(this.subscribeClient) }),
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
