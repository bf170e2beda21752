// The per-source cache of webhook configuration (src/domain/webhooks/webhook-source-cache.ts) on its own: how long
// an entry lives, what forget() does, and that concurrent readers share one load. A counting loader stands in for
// Postgres and the secret store; the end-to-end behaviour (two replicas, pub/sub) is in webhooks.test.ts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebhookSource } from '../src/generated/prisma/client.js';
import { WebhookSourceCache, type SourceConfig } from '../src/domain/webhooks/webhook-source-cache.js';

function loader(known: string[]) {
  const loads: string[] = [];
  let version = 0;
  const load = async (id: string): Promise<SourceConfig | null> => {
    loads.push(id);
    version += 1;
    return known.includes(id) ? { source: { id } as WebhookSource, secret: `secret-${version}`, rules: [] } : null;
  };
  return { loads, load };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('WebhookSourceCache', () => {
  it('serves a source from memory until its time limit, then reads it again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { loads, load } = loader(['a']);
    const cache = new WebhookSourceCache(load, 30_000);
    expect((await cache.get('a'))!.secret).toBe('secret-1');
    vi.advanceTimersByTime(29_000);
    expect((await cache.get('a'))!.secret).toBe('secret-1');
    vi.advanceTimersByTime(1_001);
    expect((await cache.get('a'))!.secret).toBe('secret-2');
    expect(loads).toEqual(['a', 'a']);
  });

  it('reads a forgotten source again at once', async () => {
    const { loads, load } = loader(['a']);
    const cache = new WebhookSourceCache(load, 30_000);
    await cache.get('a');
    cache.forget('a');
    expect((await cache.get('a'))!.secret).toBe('secret-2');
    expect(loads).toEqual(['a', 'a']);
  });

  it('shares one load among concurrent readers, and a load that was running when forgotten is not kept', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let version = 0;
    const cache = new WebhookSourceCache(async (id) => {
      version += 1;
      const mine = version;
      await gate;
      return { source: { id } as WebhookSource, secret: `secret-${mine}`, rules: [] };
    }, 30_000);
    const readers = [cache.get('a'), cache.get('a')];
    cache.forget('a'); // e.g. a rule changed while the first load was running
    const after = cache.get('a');
    release();
    expect((await Promise.all(readers)).map((config) => config!.secret)).toEqual(['secret-1', 'secret-1']);
    expect((await after)!.secret).toBe('secret-2');
    expect((await cache.get('a'))!.secret).toBe('secret-2');
    expect(version).toBe(2);
  });

  it('does not remember unknown ids (they come from URLs) or failed loads', async () => {
    const { loads, load } = loader([]);
    const cache = new WebhookSourceCache(load, 30_000);
    expect(await cache.get('forged')).toBeNull();
    expect(await cache.get('forged')).toBeNull();
    expect(loads).toEqual(['forged', 'forged']);
    let fail = true;
    const flaky = new WebhookSourceCache(async (id) => {
      if (fail) throw new Error('database hiccup');
      return { source: { id } as WebhookSource, secret: 's', rules: [] };
    }, 30_000);
    await expect(flaky.get('a')).rejects.toThrow('database hiccup');
    fail = false;
    expect((await flaky.get('a'))!.secret).toBe('s');
  });
});
