// The Batcher on its own (src/domain/batcher.ts): no I/O, so plain promises stand in for the statements.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/domain/batcher.js';

/** A run whose batches finish when the test says so. */
function controlledRun() {
  const batches: Array<{ items: number[]; finish: (error?: Error) => void }> = [];
  const run = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({ items, finish: (error) => (error ? reject(error) : resolve(items.map((item) => `done ${item}`))) });
    });
  return { batches, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('sends a call to an idle batcher at once, together with the calls of the same tick', async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, maxBatch: 50 });
    const answers = [batcher.add(1), batcher.add(2)];
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1, 2]]);
    batches[0]!.finish();
    expect(await Promise.all(answers)).toEqual(['done 1', 'done 2']);
  });

  it('collects calls made while a batch runs into the next batch, up to maxBatch each', async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, maxBatch: 3 });
    const first = batcher.add(1);
    await tick();
    const later = [2, 3, 4, 5].map((item) => batcher.add(item));
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1]]); // waiting for the first batch
    batches[0]!.finish();
    expect(await first).toBe('done 1');
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.finish();
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3, 4], [5]]);
    batches[2]!.finish();
    expect(await Promise.all(later)).toEqual(['done 2', 'done 3', 'done 4', 'done 5']);
  });

  it('runs up to maxInFlight batches at once', async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 2, maxBatch: 50 });
    void batcher.add(1);
    await tick();
    void batcher.add(2);
    await tick();
    void batcher.add(3);
    void batcher.add(4);
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2]]);
    batches[1]!.finish();
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2], [3, 4]]);
  });

  it('keeps a batch under maxWeight, but sends an item heavier than that alone', async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, maxBatch: 50, maxWeight: 10, weigh: (item: number) => item });
    void batcher.add(1);
    await tick();
    for (const item of [4, 5, 2, 30, 3]) void batcher.add(item);
    batches[0]!.finish();
    for (let i = 1; i <= 3; i += 1) {
      await tick();
      batches[i]!.finish();
    }
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [4, 5], [2], [30], [3]]);
  });

  it('fails every call of a failed batch, and goes on with the next', async () => {
    const { batches, run } = controlledRun();
    const batcher = new Batcher(run, { maxInFlight: 1, maxBatch: 50 });
    const failing = [batcher.add(1), batcher.add(2)];
    await tick();
    const next = batcher.add(3);
    batches[0]!.finish(new Error('statement failed'));
    for (const call of failing) await expect(call).rejects.toThrow('statement failed');
    await tick();
    batches[1]!.finish();
    expect(await next).toBe('done 3');
  });
});
