// The per-subscriber share of notification slots (src/workers/subscriber-slots.ts) against the real Redis: what
// two workers see of each other's holds, and a hold that lapses when its worker died mid-request.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SubscriberSlots } from '../src/workers/subscriber-slots.js';
import { testRedisUrl } from './support/harness.js';

const prefix = `sytest-slots-${randomBytes(4).toString('hex')}`;
const redis = new Redis(testRedisUrl);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('SubscriberSlots', () => {
  it("gives a subscriber two slots across workers, frees one on release, and keeps subscribers apart", async () => {
    const one = new SubscriberSlots(redis, prefix, 2, 60_000);
    const other = new SubscriberSlots(redis, prefix, 2, 60_000); // another worker
    expect(await one.acquire('s1', 'n1')).toBe(true);
    expect(await other.acquire('s1', 'n2')).toBe(true);
    expect(await one.acquire('s1', 'n3')).toBe(false);
    expect(await other.acquire('s2', 'n4')).toBe(true); // another subscriber's share
    expect(await other.acquire('s1', 'n1')).toBe(false); // held already (the same job, stalled and run again elsewhere)
    await other.release('s1', 'n2');
    expect(await one.acquire('s1', 'n3')).toBe(true);
  });

  it('frees a hold whose worker died mid-request once the hold lapses', async () => {
    const slots = new SubscriberSlots(redis, prefix, 1, 1000);
    expect(await slots.acquire('s3', 'gone-worker')).toBe(true);
    expect(await slots.acquire('s3', 'next')).toBe(false);
    await sleep(1100);
    expect(await slots.acquire('s3', 'next')).toBe(true);
    // And the key itself does not outlive its holds.
    await sleep(1100);
    expect(await redis.exists(`${prefix}:notification-slots:s3`)).toBe(0);
  });
});
