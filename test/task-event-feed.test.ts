// TaskEventFeed, an API replica's live side of task events, against the real Redis: what a subscriber gets
// when it reads slower than events arrive, when it has not read yet, and when a channel carries something that
// is not an event.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskEventFeed } from '../src/events/task-event-feed.js';
import { testRedisUrl } from './support/harness.js';
import { waitFor } from './support/worker-harness.js';

const prefix = `sytest-feed-${randomUUID().slice(0, 8)}`;
const capacity = 50;
let feed: TaskEventFeed;
/** Another replica's feed, holding enough for a whole burst. */
let roomy: TaskEventFeed;
let redis: Redis;

beforeAll(() => {
  feed = new TaskEventFeed(testRedisUrl, prefix, capacity);
  roomy = new TaskEventFeed(testRedisUrl, prefix, 10_000);
  redis = new Redis(testRedisUrl);
});

afterAll(() => {
  feed?.close();
  roomy?.close();
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
    const keeping = roomy.all(); // holds the whole burst: tells when it has arrived
    try {
      await waitFor(async () => (await redis.publish(`${prefix}:taskEvents`, JSON.stringify({ probe: true }))) === 2 || null, 5000, 'both subscribers');
      const burst = 3000; // more than graphql-yoga's pub/sub lets pile up (1024) before it throws
      const pipeline = redis.pipeline();
      for (let seq = 1; seq <= burst; seq += 1) pipeline.publish(`${prefix}:taskEvents`, JSON.stringify({ seq }));
      await pipeline.exec();
      const arrived = (await read<{ seq?: number }>(keeping, 10_000, (m) => m.seq === burst)).filter((m) => m.seq !== undefined);
      expect(arrived.map((m) => m.seq)).toEqual(Array.from({ length: burst }, (_, i) => i + 1));

      const held = await read<{ seq: number }>(behind, capacity);
      expect(held.map((m) => m.seq)).toEqual(Array.from({ length: capacity }, (_, i) => burst - capacity + i + 1));
      await redis.publish(`${prefix}:taskEvents`, JSON.stringify({ seq: burst + 1 }));
      expect(await read(behind, 1)).toEqual([{ seq: burst + 1 }]);
    } finally {
      await Promise.all([behind.return?.(), keeping.return?.()]);
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
