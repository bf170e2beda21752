// Groups concurrent calls into batches, so that work with a high fixed cost per call (a SQL statement: Prisma's
// query compilation, Postgres's parse, plan and commit) is paid once for many callers. A call made while
// `maxInFlight` batches are already running waits, and goes out together with every other call that arrived
// meanwhile as soon as one of them finishes. A call to an idle batcher goes out at once (with the other calls of
// the same tick), so without load there is no added latency: batches only form when calls would queue anyway.
export interface BatcherOptions<I> {
  /** Batches running at the same time; more means smaller batches, less means more waiting. */
  maxInFlight: number;
  /** Most calls in one batch; a longer queue goes out in several. */
  maxBatch: number;
  /**
   * Optionally, a limit on a batch's total weight (e.g. bytes), `weigh` giving an item's. An item heavier than
   * the limit on its own still goes, alone.
   */
  maxWeight?: number;
  weigh?: (item: I) => number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class Batcher<I, O> {
  private waiting: Array<Waiting<I, O>> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    /** Does the work for a batch: one result per item, in order. A failure fails every call of the batch. */
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly options: BatcherOptions<I>,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    // After the current tick, so calls made in the same tick share a batch.
    process.nextTick(() => {
      this.scheduled = false;
      while (this.waiting.length > 0 && this.inFlight < this.options.maxInFlight) this.start(this.waiting.splice(0, this.nextBatchSize()));
    });
  }

  private nextBatchSize(): number {
    const { maxBatch, maxWeight, weigh } = this.options;
    if (maxWeight === undefined || !weigh) return maxBatch;
    let size = 0;
    let weight = 0;
    for (const { item } of this.waiting) {
      weight += weigh(item);
      if (size >= maxBatch || (size > 0 && weight > maxWeight)) break;
      size += 1;
    }
    return size;
  }

  private start(batch: Array<Waiting<I, O>>): void {
    this.inFlight += 1;
    void (async () => {
      try {
        const results = await this.run(batch.map((waiting) => waiting.item));
        batch.forEach((waiting, index) => waiting.resolve(results[index]!));
      } catch (error) {
        for (const waiting of batch) waiting.reject(error);
      } finally {
        this.inFlight -= 1;
        this.schedule();
      }
    })();
  }
}
