// Who a WebSocket connection's bearer token stands for, remembered for a few seconds (the HTTP rate limit asks it
// too, only to choose a request's budget: the request itself is authenticated by its context). Looking a token up
// (a Prisma query: compiled in Wasm on the event loop, then Postgres) was the largest cost of accepting a
// connection (bench/fanout.ts, profile while connecting), and clients reconnect in crowds, with the same few
// tokens, after a deploy or a network blip: while 1,000 of them are looked up one by one, live events wait.
//
// What the cache must not do is let a token in that the database would refuse. So: only successful lookups are
// kept (a new token is never refused from the cache, a wrong one always reaches the database); a token's expiry
// is checked on every use; an entry is dropped at once when a replica announces the token's revocation, and when
// the periodic re-check of open connections finds it revoked or expired; and entries live `ttlMs`, far less than
// that re-check's interval, which already bounds how long a revocation the API was not told about (the CLI's)
// takes to close connections. Lookups of one token that overlap share one query.
import { hashToken, looksLikeToken } from '../domain/auth/token-service.js';
import type { Principal } from '../domain/auth/principal.js';

type Lookup = (secret: string) => Promise<{ principal: Principal; expiresAt: Date | null } | null>;

interface Entry {
  principal: Principal;
  /** Token expiry, ms since the epoch (Infinity when it does not expire). */
  expiresAt: number;
  /** When the entry must be looked up again. */
  staleAt: number;
}

/** Whether a cached entry still answers for its token at `now` (not due for a look-up, token not expired). */
const isFresh = (entry: Entry | undefined, now: number): entry is Entry => entry !== undefined && now < entry.staleAt && now < entry.expiresAt;

export class ConnectionPrincipals {
  /** By token hash: the secret itself is not kept as a key. */
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Principal | null>>();
  /** When each recently forgotten token was forgotten, so a lookup that started before does not bring it back. */
  private readonly forgotten = new Map<string, number>();

  constructor(
    private readonly lookup: Lookup,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(secret: string): Promise<Principal | null> {
    const key = hashToken(secret);
    const entry = this.entries.get(key);
    const asked = this.now();
    if (isFresh(entry, asked)) return entry.principal;
    if (entry) this.entries.delete(key);
    const principal = await (this.inFlight.get(key) ?? this.lookUp(key, secret));
    // Revoked while we waited: the answer may predate the revocation, so ask the database again.
    if (principal && this.forgottenSince(principal.tokenId, asked)) return (await this.lookup(secret))?.principal ?? null;
    return principal;
  }

  /**
   * Whether authenticating the token now would start a database query: it has a token's form, and it is neither
   * cached (looked up in the last `ttlMs`, and still authenticating) nor being looked up already.
   */
  wouldQuery(secret: string): boolean {
    if (!looksLikeToken(secret)) return false;
    const key = hashToken(secret);
    const entry = this.entries.get(key);
    const now = this.now();
    return !isFresh(entry, now) && !this.inFlight.has(key);
  }

  /** The token is revoked or expired: the next connection with it goes to the database. */
  forget(tokenId: string): void {
    this.forgotten.set(tokenId, this.now());
    for (const [key, entry] of this.entries) if (entry.principal.tokenId === tokenId) this.entries.delete(key);
  }

  /** Drops stale entries (and old revocation marks); call now and then. */
  sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (!isFresh(entry, now)) this.entries.delete(key);
    for (const [tokenId, at] of this.forgotten) if (now - at > this.ttlMs) this.forgotten.delete(tokenId);
  }

  private lookUp(key: string, secret: string): Promise<Principal | null> {
    const started = this.now();
    const lookup = this.lookup(secret)
      .then((found) => {
        if (found && !this.forgottenSince(found.principal.tokenId, started)) {
          this.entries.set(key, { principal: found.principal, expiresAt: found.expiresAt?.getTime() ?? Infinity, staleAt: started + this.ttlMs });
        }
        return found?.principal ?? null;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, lookup);
    return lookup;
  }

  private forgottenSince(tokenId: string | null, since: number): boolean {
    const at = tokenId ? this.forgotten.get(tokenId) : undefined;
    return at !== undefined && at >= since;
  }
}
