// What every delivery needs about its source (the source row, its secret, its enabled rules) kept in memory per
// source id, because each delivery needs it and it rarely changes: without it a delivery costs a source lookup, a
// secret-store read and a rules query before any work is done.
//
// How stale it can be: a change made through WebhookService (rules created, updated or deleted, a secret rotated,
// a source deleted) drops the entry on the replica that made it at once, and on the other replicas as soon as the
// change is announced over Redis pub/sub (milliseconds). An announcement that never arrives (a replica reconnecting
// to Redis at that moment) is covered by the time limit: an entry is never used for longer than `ttlMs`.
import type { WebhookRule, WebhookSource } from '../../generated/prisma/client.js';

export interface SourceConfig {
  source: WebhookSource;
  secret: string;
  /** Enabled rules in creation order, the order they fire in. */
  rules: WebhookRule[];
}

interface Entry {
  config: Promise<SourceConfig | null>;
  until: number;
}

export class WebhookSourceCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** Reads a source's configuration; null when the source does not exist (or its secret is gone). */
    private readonly load: (sourceId: string) => Promise<SourceConfig | null>,
    private readonly ttlMs: number,
  ) {}

  get(sourceId: string): Promise<SourceConfig | null> {
    const now = Date.now();
    const cached = this.entries.get(sourceId);
    if (cached && cached.until > now) return cached.config;
    // The promise is kept, not its result, so concurrent deliveries of an uncached source share one load. A load
    // that was already running when forget() dropped its entry can no longer store a stale result.
    const entry: Entry = { config: this.load(sourceId), until: now + this.ttlMs };
    this.entries.set(sourceId, entry);
    // Unknown ids are not remembered: they come from the URL, so remembering them would let forged traffic grow
    // the map. Failed loads are not remembered either.
    const drop = () => {
      if (this.entries.get(sourceId) === entry) this.entries.delete(sourceId);
    };
    entry.config.then((config) => {
      if (!config) drop();
    }, drop);
    return entry.config;
  }

  /** The source or its rules changed: the next delivery reads them again. */
  forget(sourceId: string): void {
    this.entries.delete(sourceId);
  }
}
