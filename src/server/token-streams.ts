// Subscriptions over HTTP (server-sent events) end when their token is revoked or expires, as WebSocket
// connections are closed then (subscriptions.ts). A revocation announced by any replica ends them at once, and a
// periodic re-check catches expiry and revocations from the CLI. The stream gets a last UNAUTHENTICATED error,
// then completes.
import { Repeater } from '@repeaterjs/repeater';
import type { ExecutionResult } from 'graphql';
import type { TokenService } from '../domain/auth/token-service.js';
import { unauthenticated } from './authentication.js';

export class TokenStreams {
  private readonly byToken = new Map<string, Set<() => void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(tokens: TokenService, revalidateMs: number) {
    this.timer = setInterval(() => {
      void (async () => {
        for (const tokenId of [...this.byToken.keys()]) {
          if ((await tokens.stillValid(tokenId)) === false) this.end(tokenId);
        }
      })();
    }, revalidateMs);
    this.timer.unref();
  }

  /** The results of `source`, until the consumer stops or `tokenId` stops authenticating. */
  watch(tokenId: string, source: AsyncIterable<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
    return new Repeater<ExecutionResult>(async (push, stop) => {
      let revoke!: () => void;
      const revoked = new Promise<'revoked'>((resolve) => (revoke = () => resolve('revoked')));
      const stopped = stop.then(() => 'stopped' as const);
      const enders = this.byToken.get(tokenId) ?? new Set();
      this.byToken.set(tokenId, enders.add(revoke));
      const iterator = source[Symbol.asyncIterator]();
      try {
        for (;;) {
          const next = await Promise.race([iterator.next(), revoked, stopped]);
          if (next === 'stopped') return;
          if (next === 'revoked') {
            await push({ errors: [unauthenticated('The API token was revoked or has expired')] });
            return;
          }
          if (next.done) return;
          await push(next.value);
        }
      } finally {
        enders.delete(revoke);
        if (enders.size === 0 && this.byToken.get(tokenId) === enders) this.byToken.delete(tokenId);
        stop();
        await iterator.return?.();
      }
    });
  }

  /** Ends every stream of `tokenId`. */
  end(tokenId: string): void {
    for (const revoke of this.byToken.get(tokenId) ?? []) revoke();
  }

  close(): void {
    clearInterval(this.timer);
  }
}
