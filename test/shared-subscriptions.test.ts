// SharedSubscriptions (src/server/shared-subscriptions.ts) on its own: what the subscribers of one shared
// execution get when its source fails part-way.
import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { SharedSubscriptions, type ResultConsumer } from '../src/server/shared-subscriptions.js';

function consumer() {
  const received: unknown[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  const sink: ResultConsumer = { deliver: (json) => received.push(JSON.parse(json)), end: () => ended() };
  return { sink, received, done };
}

describe('SharedSubscriptions', () => {
  it("gives every subscriber a masked error before the end when the source fails, so none takes it for the subscription's own end", async () => {
    const failures: unknown[] = [];
    const shared = new SharedSubscriptions((error) => failures.push(error));
    let fail!: () => void;
    const failing = new Promise<void>((resolve) => (fail = resolve));
    async function* source(): AsyncGenerator<ExecutionResult> {
      yield { data: { taskEvents: { seq: 1 } } };
      await failing;
      throw new Error('connection to server at "10.0.0.7", port 5432 failed');
    }
    const [a, b] = [consumer(), consumer()];
    await shared.subscribe('key', 'replay', () => source(), a.sink);
    await shared.subscribe('key', 'replay', () => source(), b.sink); // joins the running execution
    expect(shared.size).toBe(1);
    fail();
    await Promise.all([a.done, b.done]);
    const masked = { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] };
    expect(a.received).toEqual([{ data: { taskEvents: { seq: 1 } } }, masked]);
    expect(b.received).toEqual([{ data: { taskEvents: { seq: 1 } } }, masked]);
    expect(failures).toHaveLength(1);
    expect(String(failures[0])).toContain('port 5432 failed'); // for the log, never for the client
    expect(shared.size).toBe(0);
  });

  it('ends without an error when the source ends', async () => {
    const shared = new SharedSubscriptions();
    async function* source(): AsyncGenerator<ExecutionResult> {
      yield { data: { n: 1 } };
    }
    const a = consumer();
    await shared.subscribe('done', 'live', () => source(), a.sink);
    await a.done;
    expect(a.received).toEqual([{ data: { n: 1 } }]);
  });
});
