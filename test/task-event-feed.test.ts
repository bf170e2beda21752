// TaskEventFeed, an API replica's live side of task events, against the real Redis: what a subscriber gets
// when it reads slower than events arrive, when it has not read yet, and when a channel carries something that
// is not an event.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filteredFeed } from '../src/events/feed-subscription.js';
import { TaskEventFeed } from '../src/events/task-event-feed.js';
import { testRedisUrl } from './support/harness.js';
import { channelListeners } from './support/net.js';
import { waitFor } from './support/worker-harness.js';

const prefix = `sytest-feed-${randomUUID().slice(0, 8)}`;
const capacity = 50;
let feed: TaskEventFeed;
let redis: Redis;

beforeAll(() => {
  feed = new TaskEventFeed(testRedisUrl, prefix, capacity);
  redis = new Redis(testRedisUrl);
});

afterAll(() => {
  feed?.close();
  redis?.disconnect();
});

/** Publishes `probe` until the channel has a subscriber that got it (PUBLISH answers how many did). */
const untilSubscribed = (channel: string) =>
  waitFor(async () => (await redis.publish(channel, JSON.stringify({ probe: true }))) > 0 || null, 5000, `a subscriber on ${channel}`);

/** Up to `count` messages, or until one is `last`. */
async function read<T>(iterator: AsyncIterator<T>, count: number, last: (value: T) => boolean = () => false): Promise<T[]> {
  const values: T[] = [];
  while (values.length < count) {
    const next = await iterator.next();
    if (next.done) break;
    values.push(next.value);
    if (last(next.value)) break;
  }
  return values;
}

describe('TaskEventFeed', () => {
  it('listens from the moment a subscription is made, before its first read', async () => {
    const taskId = randomUUID();
    const events = feed.task(taskId);
    try {
      await untilSubscribed(`${prefix}:taskEvent:${taskId}`);
      await redis.publish(`${prefix}:taskEvent:${taskId}`, JSON.stringify({ seq: 1 }));
      const [probe, first] = await read(events, 2);
      expect(probe).toEqual({ probe: true });
      expect(first).toEqual({ seq: 1 });
    } finally {
      await events.return?.();
    }
  });

  it('keeps the newest messages for a reader that fell behind a burst, and goes on delivering', async () => {
    const behind = feed.all();
    // Published after the burst, on the same connection: when it has arrived, the whole burst has.
    const markerId = randomUUID();
    const marker = feed.task(markerId);
    try {
      await untilSubscribed(`${prefix}:taskEvents`);
      await untilSubscribed(`${prefix}:taskEvent:${markerId}`);
      const burst = 3000; // more than graphql-yoga's pub/sub lets pile up (1024) before it throws
      const pipeline = redis.pipeline();
      for (let seq = 1; seq <= burst; seq += 1) pipeline.publish(`${prefix}:taskEvents`, JSON.stringify({ seq }));
      pipeline.publish(`${prefix}:taskEvent:${markerId}`, JSON.stringify({ seq: 'marker' }));
      await pipeline.exec();
      await read<{ seq?: unknown }>(marker, 100, (m) => m.seq === 'marker');

      const held = await read<{ seq: number }>(behind, capacity);
      expect(held.map((m) => m.seq)).toEqual(Array.from({ length: capacity }, (_, i) => burst - capacity + i + 1));
      await redis.publish(`${prefix}:taskEvents`, JSON.stringify({ seq: burst + 1 }));
      expect(await read(behind, 1)).toEqual([{ seq: burst + 1 }]);
    } finally {
      await Promise.all([behind.return?.(), marker.return?.()]);
    }
  });

  it('says when Redis has confirmed a subscription: a message published from then on reaches it', async () => {
    const taskId = randomUUID();
    const events = feed.task(taskId);
    try {
      await events.ready;
      expect(await redis.publish(`${prefix}:taskEvent:${taskId}`, JSON.stringify({ seq: 1 }))).toBe(1);
      expect(await read(events, 1)).toEqual([{ seq: 1 }]);
    } finally {
      await events.return?.();
    }
  });

  it('drops a message that is not JSON, and delivers the next one', async () => {
    const taskId = randomUUID();
    const events = feed.task(taskId);
    try {
      await untilSubscribed(`${prefix}:taskEvent:${taskId}`);
      await redis.publish(`${prefix}:taskEvent:${taskId}`, '{not json');
      await redis.publish(`${prefix}:taskEvent:${taskId}`, JSON.stringify({ seq: 2 }));
      expect(await read(events, 2)).toEqual([{ probe: true }, { seq: 2 }]);
    } finally {
      await events.return?.();
    }
  });

  it('ends a reader waiting for a message when its subscription is returned', async () => {
    const events = feed.task(randomUUID());
    const waiting = events.next();
    await events.return?.();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });
});

describe('filteredFeed (taskUpdated)', () => {
  const numsub = (channel: string) => channelListeners(redis, channel);

  it('subscribes on its first read, delivers what it keeps, and unsubscribes when its reader returns or a read fails', async () => {
    const taskId = randomUUID();
    const channel = `${prefix}:taskEvent:${taskId}`;
    const kept = filteredFeed(() => feed.task(taskId), (message: { seq?: number }) => (message.seq ?? 0) % 2 === 0);
    expect(await numsub(channel)).toBe(0); // made, not read: nothing listens
    const first = kept.next();
    await waitFor(async () => (await numsub(channel)) === 1 || null, 5000, 'the subscription');
    for (const seq of [1, 2, 3]) await redis.publish(channel, JSON.stringify({ seq }));
    expect((await first).value).toEqual({ seq: 2 });
    await kept.return!();
    await waitFor(async () => (await numsub(channel)) === 0 || null, 5000, 'the unsubscription');

    // A filter that throws fails the read, and the subscription goes with it (a reader need not return() then).
    const failing = filteredFeed(() => feed.task(taskId), () => {
      throw new Error('bad filter');
    });
    const failed = failing.next().then(
      () => null,
      (error: Error) => error.message,
    );
    await waitFor(async () => (await numsub(channel)) === 1 || null, 5000, 'the second subscription');
    await redis.publish(channel, JSON.stringify({ seq: 4 }));
    expect(await failed).toBe('bad filter');
    await waitFor(async () => (await numsub(channel)) === 0 || null, 5000, 'the unsubscription after the failed read');
    expect(await failing.next()).toEqual({ value: undefined, done: true });
  });
});
