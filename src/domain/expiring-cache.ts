// Values that rarely change but are needed on a hot path (per webhook delivery, per finished task), kept in
// memory per key for at most `ttlMs`. Whoever owns the data calls forget() when it changes (and announces the
// change to other processes, which forget too); the time limit bounds how stale a missed announcement leaves it.
//
// The promise is kept, not its result, so concurrent callers of an uncached key share one load, and a load that
// was already running when forget() dropped its entry cannot store a stale result. Failed loads, and values
// `keep` refuses, are not remembered.

interface Entry<V> {
  value: Promise<V>;
  until: number;
}

export class ExpiringCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();

  constructor(
    private readonly load: (key: K) => Promise<V>,
    private readonly ttlMs: number,
    /** Whether a loaded value may be remembered (e.g. not a "not found" answer for a key taken from a URL). */
    private readonly keep: (value: V) => boolean = () => true,
  ) {}

  get(key: K): Promise<V> {
    const now = Date.now();
    const cached = this.entries.get(key);
    if (cached && cached.until > now) return cached.value;
    const entry: Entry<V> = { value: this.load(key), until: now + this.ttlMs };
    this.entries.set(key, entry);
    const drop = () => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    entry.value.then((value) => {
      if (!this.keep(value)) drop();
    }, drop);
    return entry.value;
  }

  /** The key's data changed: the next get() loads it again. */
  forget(key: K): void {
    this.entries.delete(key);
  }
}
