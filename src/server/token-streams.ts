// Subscriptions over HTTP (server-sent events) end when their token is revoked or expires, as WebSocket
// connections are closed then (subscriptions.ts); the TokenWatch says when. The stream gets a last
// UNAUTHENTICATED error, then completes.
import { Repeater } from '@repeaterjs/repeater';
import type { ExecutionResult } from 'graphql';
import { StopSignal } from '../stop-signal.js';
import { unauthenticated } from './authentication.js';
import type { TokenWatch } from './token-watch.js';

export class TokenStreams {
  constructor(private readonly tokens: TokenWatch) {}

  /** The results of `source`, until the consumer stops or `tokenId` stops authenticating. */
  watch(tokenId: string, source: AsyncIterable<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
    return new Repeater<ExecutionResult>(async (push, stop) => {
      const ended = new StopSignal<'revoked' | 'stopped'>();
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
          if (next.done) return;
          await push(next.value);
        }
      } finally {
        unwatch();
        stop();
        await iterator.return?.();
      }
    });
  }
}
