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
  /** Enabled rules in creation order, the order they fire in. */
  rules: WebhookRule[];
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
