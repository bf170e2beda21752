// The DNS lookups of notification deliveries, a few at a time. dns.lookup (getaddrinfo) runs on libuv's thread
// pool, four threads shared with file reads (a worker's heartbeat reads /proc for its task children), and it
// cannot be cancelled: a delivery that times out leaves its lookup running. A subscriber whose name servers never
// answer would fill the pool, one abandoned 10–30 s lookup after another, and hold the heartbeat up until other
// workers took this one's runs for lost. So: at most `max` lookups under way (unanswered ones included, until
// the resolver gives up), lookups of a name already under way share its answer (one stuck subscriber holds one
// place, not all of them), and one that waits longer than `maxWaitMs` for a place fails as the resolver would
// that could not answer now (EAI_AGAIN), well within the delivery's own time limit.
import type { LookupAddress, LookupAllOptions } from 'node:dns';

/** dns.lookup asked for every address. */
export type ResolveAll = (hostname: string, options: LookupAllOptions, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

type Answer = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

interface Waiting {
  key: string;
  hostname: string;
  options: LookupAllOptions;
  answer: Answer;
  timer: NodeJS.Timeout;
}

export class SharedLookups {
  /** By name and options: the answers waiting for the lookup under way. */
  private readonly underWay = new Map<string, Answer[]>();
  /** Oldest first. */
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly resolveAll: ResolveAll,
    private readonly max = 2,
    private readonly maxWaitMs = 5000,
  ) {}

  resolve(hostname: string, options: Pick<LookupAllOptions, 'family' | 'hints'>, answer: Answer): void {
    const all: LookupAllOptions = { family: options.family, hints: options.hints, all: true };
    const key = `${hostname}\u0000${all.family ?? 0}\u0000${all.hints ?? 0}`;
    const joined = this.underWay.get(key);
    if (joined) return void joined.push(answer);
    if (this.underWay.size < this.max) return this.start(key, hostname, all, [answer]);
    const entry: Waiting = {
      key,
      hostname,
      options: all,
      answer,
      timer: setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        answer(Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname} (other lookups are still under way)`), { code: 'EAI_AGAIN', hostname }), []);
      }, this.maxWaitMs).unref(),
    };
    this.waiting.push(entry);
  }

  private start(key: string, hostname: string, options: LookupAllOptions, answers: Answer[]): void {
    this.underWay.set(key, answers);
    let answered = false;
    const done: Answer = (error, addresses) => {
      if (answered) return;
      answered = true;
      this.underWay.delete(key);
      // Its place goes to the next one first: an answer that throws cannot hold the queue up.
      this.startWaiting();
      for (const answer of answers) answer(error, addresses ?? []);
    };
    try {
      this.resolveAll(hostname, options, done);
    } catch (error) {
      done(error as NodeJS.ErrnoException, []);
    }
  }

  private startWaiting(): void {
    while (this.underWay.size < this.max && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      clearTimeout(next.timer);
      const joined = this.underWay.get(next.key);
      if (joined) joined.push(next.answer);
      else this.start(next.key, next.hostname, next.options, [next.answer]);
    }
  }
}
