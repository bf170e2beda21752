// Sliding-window rate limits in Redis, so every API replica counts against the same window. Debian's Caddy
// has no rate-limit module, hence here. A limit that cannot be checked (Redis down) lets the request through:
// the queue and /readyz already report the outage, and refusing all traffic would make it worse.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP, type BlockList } from 'node:net';
import type { Redis } from 'ioredis';
import { addressType } from '../net/address-ranges.js';

const slidingWindow = `
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window - now}
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window)
return {1, 0}
`;

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly windowMs = 60_000,
  ) {}

  /** Counts one request for `key` against `limit` per window; limit 0 means unlimited. */
  async hit(scope: string, key: string, limit: number): Promise<RateDecision> {
    if (limit <= 0) return { allowed: true };
    try {
      const [allowed, waitMs] = (await this.redis.eval(
        slidingWindow,
        1,
        `${this.prefix}:ratelimit:${scope}:${key}`,
        Date.now(),
        this.windowMs,
        limit,
        `${Date.now()}-${randomBytes(4).toString('hex')}`,
      )) as [number, number];
      return allowed === 1 ? { allowed: true } : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    } catch {
      return { allowed: true };
    }
  }
}

/** Rate-limit key for a bearer token: a hash, so the token itself never reaches Redis. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 32);
}

/**
 * The client's address: the peer, or X-Forwarded-For's first entry when the peer is a trusted proxy (Caddy).
 * `trustedProxies` are the addresses and ranges of SWITCHYARD_TRUSTED_PROXIES (net/address-ranges.ts).
 */
export function clientAddress(req: IncomingMessage, trustedProxies: BlockList): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  const mapped = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
  const trusted = isIP(mapped) !== 0 && trustedProxies.check(mapped, addressType(mapped));
  if (!trusted) return peer;
  const forwarded = req.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first || peer;
}

/**
 * What a client address is limited by: an IPv4 address itself, an IPv6 address by its /64. A /64 is the least
 * a network hands one site (RFC 6177; a home or a cloud VM typically gets at least one), so every address in it
 * is one client's to choose from: limited one by one, such a client would take a fresh budget per request.
 */
export function limitedAddress(address: string): string {
  const bare = address.split('%')[0]!; // a zone (fe80::1%eth0) names the link, not the client
  if (isIP(bare) !== 6) return address;
  if (bare.startsWith('::ffff:') && isIP(bare.slice(7)) === 4) return bare.slice(7);
  const [head, tail] = bare.split('::') as [string, string | undefined];
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  // An address written with `::` has zeros where it is; one with an IPv4 tail has it in its last 32 bits only.
  const before = groups(head);
  const after = groups(tail);
  const width = (list: string[]) => list.reduce((sum, group) => sum + (group.includes('.') ? 2 : 1), 0);
  const hextets = tail === undefined ? before : [...before, ...Array<string>(8 - width(before) - width(after)).fill('0'), ...after];
  return `${hextets
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
