// A signal that a long-running loop races against each thing it waits for.
//
// `Promise.race([next, longLived])` attaches a reaction to `longLived` that holds `next`'s result until
// `longLived` settles, so a loop racing one long-lived promise keeps everything it ever received until it ends
// (a stream's whole output). Here each pass races a promise of its own (`next()`): the pass's reaction goes
// with it.
export class StopSignal<T> {
  private settled: { value: T } | null = null;
  private wake: ((value: T) => void) | null = null;

  /** Settles the signal; the first value given wins. */
  fire(value: T): void {
    if (this.settled) return;
    this.settled = { value };
    this.wake?.(value);
  }

  get fired(): boolean {
    return this.settled !== null;
  }

  /** A promise for this pass: resolved with the value once the signal fires (at once if it has). */
  next(): Promise<T> {
    if (this.settled) return Promise.resolve(this.settled.value);
    return new Promise<T>((resolve) => (this.wake = resolve));
  }
}
