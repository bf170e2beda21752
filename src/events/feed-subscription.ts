// One reader's subscription to a channel of the feed (task-event-feed.ts).
//
// It listens from the moment it is made, not from its first read: a task's stream subscribes, then reads the
// task's log from the database, then waits for live events, and an event published while it read the database
// must still reach it.
//
// It holds at most `capacity` messages its reader has not taken yet; past that the oldest go. Redis delivers
// messages as fast as they are published, whatever the reader does: a reader that waits on the database for each
// message (taskUpdated loads the task) falls behind in a burst, and without a bound its backlog grows without
// limit (graphql-yoga's own pub/sub throws from inside the Redis client once 1024 are pending, which ends the
// process). A task's stream refills what it missed from the database by sequence number; a dashboard misses
// the oldest updates of the burst, not the newest.

/**
 * A subscription, and when Redis has confirmed the channel's SUBSCRIBE: a message published before then may have
 * been missed (it was published before Redis sent this channel anything), one published after is not.
 */
export type FeedIterator<T> = AsyncIterableIterator<T> & { ready: Promise<void> };

/** The part of an EventTarget (the Redis event target) a subscription uses. */
export interface FeedTarget {
  addEventListener(topic: string, listener: (event: { detail?: unknown }) => void): void;
  removeEventListener(topic: string, listener: (event: { detail?: unknown }) => void): void;
}

/** Messages a subscription holds for a reader that has fallen behind. */
export const defaultFeedCapacity = 1024;

/** `subscribed`: the channel's SUBSCRIBE as sent by the target (after the listener is added). */
export function feedSubscription<T>(target: FeedTarget, topic: string, capacity: number = defaultFeedCapacity, subscribed: () => Promise<unknown> = async () => undefined): FeedIterator<T> {
  const held: T[] = [];
  const readers: Array<(result: IteratorResult<T>) => void> = [];
  let ended = false;
  const listener = (event: { detail?: unknown }) => {
    // null: an empty message; undefined: one that was not JSON (see task-event-feed.ts). Neither is an event.
    if (ended || event.detail === null || event.detail === undefined) return;
    const reader = readers.shift();
    if (reader) reader({ value: event.detail as T, done: false });
    else if (held.push(event.detail as T) > capacity) held.shift();
  };
  target.addEventListener(topic, listener);
  // Never rejects: a subscription that Redis did not confirm (it is down) is as good as it gets.
  const ready = subscribed().then(
    () => undefined,
    () => undefined,
  );
  const end = (): IteratorResult<T> => {
    if (!ended) {
      ended = true;
      held.length = 0;
      target.removeEventListener(topic, listener);
      for (const reader of readers.splice(0)) reader({ value: undefined, done: true });
    }
    return { value: undefined, done: true };
  };
  return {
    ready,
    next: () => {
      if (held.length > 0) return Promise.resolve({ value: held.shift()!, done: false });
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => readers.push(resolve));
    },
    return: async () => end(),
    throw: async (error?: unknown) => {
      end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * The messages of the feed `subscribe` opens that `keep` accepts. The feed is opened on the first `next()`, not
 * before: a subscription that is never read (its HTTP client left before the response was sent, and nothing pulls
 * or cancels the response's body) then holds no listener. Its `return()` ends the feed at once, also while a
 * `next()` is waiting for a message that matches (which then completes).
 */
export function filteredFeed<T>(subscribe: () => AsyncIterableIterator<T>, keep: (message: T) => boolean): AsyncIterableIterator<T> {
  let feed: AsyncIterableIterator<T> | undefined;
  let ended = false;
  const end = async (): Promise<IteratorResult<T>> => {
    ended = true;
    await feed?.return?.();
    return { value: undefined, done: true };
  };
  return {
    async next() {
      if (ended) return { value: undefined, done: true };
      feed ??= subscribe();
      try {
        for (;;) {
          const result = await feed.next();
          if (result.done || keep(result.value)) return result;
        }
      } catch (error) {
        // Whoever reads this may not call return() after a failed next() (graphql-js's mapping does not).
        await end();
        throw error;
      }
    },
    return: end,
    async throw(error?: unknown) {
      await end();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
