// What every delivery needs about its source (the source row, its secret, its enabled rules) kept in memory per
// source id, because each delivery needs it and it rarely changes: without it a delivery costs a source lookup, a
// secret-store read and a rules query before any work is done.
//
// How stale it can be: a change made through WebhookService (rules created, updated or deleted, a secret rotated,
// a source deleted) drops the entry on the replica that made it at once, and on the other replicas as soon as the
// change is announced over Redis pub/sub (milliseconds). An announcement that never arrives (a replica reconnecting
// to Redis at that moment) is covered by the time limit: an entry is never used for longer than `ttlMs`.
import type { WebhookRule, WebhookSource } from '../../generated/prisma/client.js';
import { ExpiringCache } from '../expiring-cache.js';

export interface SourceConfig {
  source: WebhookSource;
  secret: string;
  /** The secret before the last rotation, accepted until `expiresAt` (rotateWebhookSecret's overlap). */
  previousSecret?: { secret: string; expiresAt: Date };
  /** Enabled rules in creation order, the order they fire in. */
  rules: WebhookRule[];
}

/**
 * The secrets a delivery may be signed with now: the current one, then the one it replaced while the rotation's
 * overlap lasts. The time is checked here, on each delivery, so a cached entry never stretches the overlap.
 */
export function acceptedSecrets(config: Pick<SourceConfig, 'secret' | 'previousSecret'>, now = Date.now()): string[] {
  const previous = config.previousSecret;
  return previous && previous.expiresAt.getTime() > now ? [config.secret, previous.secret] : [config.secret];
}

/**
 * Unknown ids are not remembered: they come from the URL, so remembering them would let forged traffic grow the
 * map.
 */
export class WebhookSourceCache extends ExpiringCache<string, SourceConfig | null> {
  constructor(
    /** Reads a source's configuration; null when the source does not exist (or its secret is gone). */
    load: (sourceId: string) => Promise<SourceConfig | null>,
    ttlMs: number,
  ) {
    super(load, ttlMs, (config) => config !== null);
  }
}
