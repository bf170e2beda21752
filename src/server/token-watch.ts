// What lives as long as its API token does: WebSocket connections (subscriptions.ts) and subscriptions over HTTP
// (token-streams.ts). One watch per API process ends them when their token stops authenticating: at once when
// any replica announces a revocation (create-app.ts passes the announcement to end()), and on a periodic
// re-check otherwise, which catches expiry and revocations made with the CLI. The re-check asks about every
// watched token in one query.
//
// A token that ended is remembered for a while: a connection or stream registers only after its token was looked
// up (connect, or the start of an HTTP subscription), and a revocation announced while that lookup ran would
// otherwise find nothing to end, leaving the newcomer until the next re-check. A token never authenticates again
// once it has ended (revoked or expired), so one registered after its end is ended at once.
import type { TokenService } from '../domain/auth/token-service.js';

/** How long an ended token is remembered: far longer than a token lookup takes. */
const rememberEndedMs = 10 * 60_000;

export class TokenWatch {
  private readonly byToken = new Map<string, Set<() => void>>();
  /** Tokens that ended, and when (oldest first). */
  private readonly ended = new Map<string, number>();
  private readonly listeners = new Set<(tokenId: string) => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly tokens: TokenService,
    revalidateMs: number,
  ) {
    this.timer = setInterval(() => void this.recheck(), revalidateMs);
    this.timer.unref();
  }

  /** Calls `end` once `tokenId` stops authenticating (soon, if it already has); the function returned stops watching. */
  add(tokenId: string, end: () => void): () => void {
    if (this.hasEnded(tokenId)) {
      queueMicrotask(end); // as an end announced just after: never inside the caller's own registration
      return () => undefined;
    }
    const enders = this.byToken.get(tokenId) ?? new Set();
    this.byToken.set(tokenId, enders.add(end));
    return () => {
      enders.delete(end);
      if (enders.size === 0 && this.byToken.get(tokenId) === enders) this.byToken.delete(tokenId);
    };
  }

  /** Calls `listener` for every token that ends, watched here or not (e.g. to drop what a cache holds of it). */
  onEnd(listener: (tokenId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `tokenId` no longer authenticates: end everything that lives by it. */
  end(tokenId: string): void {
    this.ended.delete(tokenId);
    this.ended.set(tokenId, Date.now());
    for (const listener of this.listeners) listener(tokenId);
    const enders = this.byToken.get(tokenId);
    this.byToken.delete(tokenId);
    for (const end of enders ?? []) end();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private hasEnded(tokenId: string): boolean {
    const forgetBefore = Date.now() - rememberEndedMs;
    for (const [id, at] of this.ended) {
      if (at >= forgetBefore) break;
      this.ended.delete(id);
    }
    return this.ended.has(tokenId);
  }

  private async recheck(): Promise<void> {
    // Nothing when the database cannot say (a hiccup): the next re-check asks again.
    for (const tokenId of await this.tokens.noLongerValid([...this.byToken.keys()])) this.end(tokenId);
  }
}
