// Subscriptions over HTTP (server-sent events) end when their token is revoked or expires, as WebSocket
// connections are closed then (subscriptions.ts); the TokenWatch says when. The stream gets a last
// UNAUTHENTICATED error, then completes. They also end when the API shuts down (closeAll), with a last
// SHUTTING_DOWN error: the HTTP server's close waits for every request to end, and a stream otherwise never does.
import { Repeater } from '@repeaterjs/repeater';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { StopSignal } from '../stop-signal.js';
import { unauthenticated } from './authentication.js';
import type { TokenWatch } from './token-watch.js';

type End = 'revoked' | 'stopped' | 'shutdown';

export class TokenStreams {
  private readonly open = new Set<StopSignal<End>>();
  /** Subscription responses open on this replica, by token. */
  private readonly perToken = new Map<string, number>();

  constructor(
    private readonly tokens: TokenWatch,
    /** Streams one token may have running on this replica (as many as its WebSocket connections). */
    private readonly maxPerToken: number,
  ) {}

  /**
   * Takes one of the token's `maxPerToken` places on this replica for a subscription over HTTP, or refuses it, as a
   * WebSocket connection over the limit is refused: each stream is a request held open, and its own execution and
   * queries. The place is taken at once (requests arriving together are counted) and given back when the response
   * closes, however it ends (also when its client left before it was sent, and no stream ever started).
   */
  reserve(tokenId: string, response: { closed?: boolean; once(event: 'close', listener: () => void): unknown } | undefined): void {
    const taken = this.perToken.get(tokenId) ?? 0;
    if (taken >= this.maxPerToken) {
      throw new GraphQLError(`At most ${this.maxPerToken} subscriptions over HTTP per token on this API replica: end one, or use a WebSocket connection, which carries many`, {
        extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', http: { status: 429 } },
      });
    }
    // Without a response to watch (an operation run in process), there is nothing held open to count.
    if (!response || response.closed) return;
    this.perToken.set(tokenId, taken + 1);
    response.once('close', () => {
      const left = this.perToken.get(tokenId)! - 1;
      if (left > 0) this.perToken.set(tokenId, left);
      else this.perToken.delete(tokenId);
    });
  }

  /** Ends every stream (the API is shutting down): each gets a SHUTTING_DOWN error, then completes. */
  closeAll(): void {
    for (const ended of this.open) ended.fire('shutdown');
  }

  /** The results of `source`, until the consumer stops or `tokenId` stops authenticating. */
  watch(tokenId: string, source: AsyncIterable<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
    return new Repeater<ExecutionResult>(async (push, stop) => {
      const ended = new StopSignal<End>();
      this.open.add(ended);
      void stop.then(() => ended.fire('stopped'));
      const unwatch = this.tokens.add(tokenId, () => ended.fire('revoked'));
      const iterator = source[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await Promise.race([iterator.next(), ended.next()]);
          if (next === 'stopped') return;
          if (next === 'revoked') {
            await push({ errors: [unauthenticated('The API token was revoked or has expired')] });
            return;
          }
          if (next === 'shutdown') {
            await push({ errors: [new GraphQLError('The server is shutting down: subscribe again', { extensions: { code: 'SHUTTING_DOWN' } })] });
            return;
          }
          if (next.done) return;
          await push(next.value);
        }
      } finally {
        this.open.delete(ended);
        unwatch();
        stop();
        await iterator.return?.();
      }
    });
  }
}
