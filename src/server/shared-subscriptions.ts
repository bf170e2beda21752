// Subscribers that send the same subscription (same document, variables and role) share one execution:
// the operation runs once per event and its result goes to all of them, instead of graphql-js executing it
// once per subscriber per event. A role's scopes decide what a result may contain, so sharing never crosses
// roles. How a subscriber joining a running execution catches up depends on the field:
// - replay: it first receives every result produced so far (taskEvents: the stream from its cursor);
// - latest: it first receives the most recent result (resourceUtilization: a snapshot now);
// - live: it receives what comes next (taskUpdated).
import type { ExecutionResult } from 'graphql';
import { Repeater } from 'graphql-yoga';

export type CatchUp = 'replay' | 'latest' | 'live';

/** Past this many buffered results a replaying execution stops taking new subscribers (they start their own). */
const maxReplayBuffer = 10_000;

/**
 * Results one subscriber may have waiting (its catch-up included). A subscriber that falls further behind is
 * dropped on its own (and told through `onOverflow`); the others sharing the execution never notice.
 */
const maxQueuedPerSubscriber = maxReplayBuffer + 1000;

type Source = AsyncIterable<ExecutionResult> | ExecutionResult;

interface Consumer {
  push(value: ExecutionResult): void;
  stop(): void;
}

class SharedExecution {
  readonly consumers = new Set<Consumer>();
  readonly history: ExecutionResult[] = [];
  latest: ExecutionResult | undefined;
  finished = false;
  private iterator: AsyncIterator<ExecutionResult> | undefined;

  constructor(
    private readonly catchUp: CatchUp,
    private readonly onIdle: () => void,
  ) {}

  get acceptsJoiners(): boolean {
    return !this.finished && (this.catchUp !== 'replay' || this.history.length < maxReplayBuffer);
  }

  run(source: AsyncIterable<ExecutionResult>): void {
    this.iterator = source[Symbol.asyncIterator]();
    void (async () => {
      try {
        for (;;) {
          const next = await this.iterator!.next();
          if (next.done) break;
          if (this.catchUp === 'replay') this.history.push(next.value);
          if (this.catchUp === 'latest') this.latest = next.value;
          for (const consumer of this.consumers) void consumer.push(next.value);
        }
      } catch {
        // The source failed: end every subscriber's stream (graphql-ws completes them).
      } finally {
        this.finished = true;
        this.onIdle();
        for (const consumer of this.consumers) consumer.stop();
      }
    })();
  }

  /**
   * A subscriber's stream. It is registered at once, in the same synchronous step that copies what it must
   * catch up on, so no result can fall in between; results arriving before it is first read are queued.
   * The queue is ours, not the Repeater's (which throws past 1024 pending pushes): each result is handed
   * over only once the subscriber has taken the previous one.
   */
  join(onOverflow?: () => void): Repeater<ExecutionResult> {
    const queued: ExecutionResult[] = this.catchUp === 'replay' ? [...this.history] : this.catchUp === 'latest' && this.latest ? [this.latest] : [];
    let stopped = this.finished;
    let overflowed = false;
    let wake: (() => void) | null = null;
    let halt: ((error?: unknown) => void) | null = null;
    const tooSlow = () => new Error('Client too slow: too many unread results');
    const consumer: Consumer = {
      push: (value) => {
        if (overflowed) return;
        if (queued.length < maxQueuedPerSubscriber) {
          queued.push(value);
        } else {
          overflowed = stopped = true;
          queued.length = 0;
          this.consumers.delete(consumer);
          halt?.(tooSlow());
          onOverflow?.();
        }
        wake?.();
      },
      stop: () => {
        stopped = true;
        wake?.();
      },
    };
    if (!stopped) this.consumers.add(consumer);
    return new Repeater<ExecutionResult>(async (push, stop) => {
      halt = stop;
      let gone = false;
      void stop.then(() => {
        gone = true;
        wake?.();
      });
      while (!gone) {
        const value = queued.shift();
        if (value) {
          await push(value);
          continue;
        }
        if (stopped) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      stop(overflowed ? tooSlow() : undefined);
      this.consumers.delete(consumer);
      if (this.consumers.size === 0 && !this.finished) {
        this.finished = true;
        this.onIdle();
        // Not awaited: the source may be waiting for its next result, and closing a socket must not wait for it.
        void this.iterator?.return?.();
      }
    });
  }
}

export class SharedSubscriptions {
  /** By key: the running execution, or the start of one that subscribers arriving meanwhile wait for. */
  private readonly executions = new Map<string, SharedExecution | Promise<{ execution: SharedExecution } | null>>();

  /** Executions running now (for tests and metrics). */
  get size(): number {
    return this.executions.size;
  }

  async subscribe(key: string, catchUp: CatchUp, start: () => Promise<Source> | Source, onOverflow?: () => void): Promise<Source> {
    const entry = this.executions.get(key);
    const running = entry instanceof Promise ? (await entry)?.execution : entry;
    if (running?.acceptsJoiners) return running.join(onOverflow);

    let errorResult: ExecutionResult | undefined;
    const starting = (async () => {
      const source = await start();
      if (!(Symbol.asyncIterator in Object(source))) {
        errorResult = source as ExecutionResult; // an error result: nothing to share
        return null;
      }
      const execution = new SharedExecution(catchUp, () => {
        if (this.executions.get(key) === execution) this.executions.delete(key);
      });
      return { execution, source: source as AsyncIterable<ExecutionResult> };
    })();
    this.executions.set(key, starting);
    let started: { execution: SharedExecution; source: AsyncIterable<ExecutionResult> } | null;
    try {
      started = await starting;
    } catch (error) {
      if (this.executions.get(key) === starting) this.executions.delete(key);
      throw error;
    }
    if (!started) {
      if (this.executions.get(key) === starting) this.executions.delete(key);
      return errorResult!;
    }
    const { execution, source } = started;
    if (this.executions.get(key) === starting) this.executions.set(key, execution);
    // The starter joins before the source runs, so it sees the very first result even in live mode.
    const first = execution.join(onOverflow);
    execution.run(source);
    return first;
  }
}
