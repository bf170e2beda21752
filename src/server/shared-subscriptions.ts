// Subscribers that send the same subscription (same document, variables and role) share one execution:
// the operation runs once per event and its result is serialised once and goes to all of them, instead of
// graphql-js executing (and graphql-ws serialising) it once per subscriber per event. A role's scopes decide
// what a result may contain, so sharing never crosses roles. How a subscriber joining a running execution
// catches up depends on the field:
// - replay: it first receives every result produced so far (taskEvents: the stream from its cursor);
// - latest: it first receives the most recent result (resourceUtilization: a snapshot now);
// - live: it receives what comes next (taskUpdated).
import type { ExecutionResult } from 'graphql';

export type CatchUp = 'replay' | 'latest' | 'live';

/** Past this many buffered results a replaying execution stops taking new subscribers (they start their own). */
export const maxReplayBuffer = 10_000;

/** Where a shared execution's results go (src/server/socket-subscriber.ts). */
export interface ResultConsumer {
  /** The next result as JSON (an ExecutionResult, serialised once for all consumers). */
  deliver(json: string): void;
  /** No more results. */
  end(): void;
}

type Source = AsyncIterable<ExecutionResult> | ExecutionResult;

/** What a subscriber gets when the execution fails: the error as the API masks any unexpected one. */
const failedJson = JSON.stringify({ errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });

class SharedExecution {
  readonly consumers = new Set<ResultConsumer>();
  /** Every result so far, as JSON (replay), or the latest (latest). */
  readonly history: string[] = [];
  latest: string | undefined;
  finished = false;
  private iterator: AsyncIterator<ExecutionResult> | undefined;

  constructor(
    private readonly catchUp: CatchUp,
    private readonly onIdle: () => void,
    private readonly onError: (error: unknown) => void,
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
          // GraphQLError has toJSON: errors serialise as graphql-ws would send them.
          const json = JSON.stringify(next.value);
          if (this.catchUp === 'replay') this.history.push(json);
          if (this.catchUp === 'latest') this.latest = json;
          for (const consumer of this.consumers) consumer.deliver(json);
        }
      } catch (error) {
        // The source failed (Postgres unreachable, say): every subscriber gets the masked error before its stream
        // completes, so that none takes the end for the subscription's own (a task's final status).
        this.onError(error);
        for (const consumer of this.consumers) consumer.deliver(failedJson);
      } finally {
        this.finished = true;
        this.onIdle();
        for (const consumer of this.consumers) consumer.end();
      }
    })();
  }

  /**
   * Registers a consumer and hands it what it must catch up on, in the same synchronous step, so no result can
   * fall in between. Returns how to leave; the last consumer to leave stops the execution.
   */
  join(consumer: ResultConsumer): () => void {
    if (this.catchUp === 'replay') for (const json of this.history) consumer.deliver(json);
    if (this.catchUp === 'latest' && this.latest !== undefined) consumer.deliver(this.latest);
    if (this.finished) {
      consumer.end();
      return () => undefined;
    }
    this.consumers.add(consumer);
    return () => {
      if (!this.consumers.delete(consumer) || this.consumers.size > 0 || this.finished) return;
      this.finished = true;
      this.onIdle();
      // Not awaited: the source may be waiting for its next result, and closing a socket must not wait for it.
      void this.iterator?.return?.();
    };
  }
}

export class SharedSubscriptions {
  /** By key: the running execution, or the start of one that subscribers arriving meanwhile wait for. */
  private readonly executions = new Map<string, SharedExecution | Promise<{ execution: SharedExecution } | null>>();

  /** `onError`: an execution's source failed (its subscribers get a masked error). */
  constructor(private readonly onError: (error: unknown) => void = () => undefined) {}

  /** Executions running now (for tests and metrics). */
  get size(): number {
    return this.executions.size;
  }

  /**
   * Joins `consumer` to the execution for `key`, starting it with `start` if there is none. Returns how to leave
   * it, or the error result `start` produced instead of a stream (nothing to share: graphql-ws sends it).
   */
  async subscribe(key: string, catchUp: CatchUp, start: () => Promise<Source> | Source, consumer: ResultConsumer): Promise<{ leave: () => void } | { error: ExecutionResult }> {
    const entry = this.executions.get(key);
    const running = entry instanceof Promise ? (await entry)?.execution : entry;
    if (running?.acceptsJoiners) return { leave: running.join(consumer) };

    let errorResult: ExecutionResult | undefined;
    const starting = (async () => {
      const source = await start();
      if (!(Symbol.asyncIterator in Object(source))) {
        errorResult = source as ExecutionResult;
        return null;
      }
      const execution = new SharedExecution(
        catchUp,
        () => {
          if (this.executions.get(key) === execution) this.executions.delete(key);
        },
        this.onError,
      );
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
      return { error: errorResult! };
    }
    const { execution, source } = started;
    if (this.executions.get(key) === starting) this.executions.set(key, execution);
    // The starter joins before the source runs, so it sees the very first result even in live mode.
    const leave = execution.join(consumer);
    execution.run(source);
    return { leave };
  }
}
