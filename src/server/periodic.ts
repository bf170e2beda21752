// Background chores of an API replica (the secret sweep, pruning old webhook deliveries): each runs once when
// the replica starts listening, then every interval, never two runs of one chore at a time. A failing run is
// logged by the chore and tried again at the next interval. Replicas running a chore at once is harmless for
// each of them (see their own files).

/** Runs `run` now and then every `intervalMs`; the returned stop function waits for a run under way. */
export function startPeriodic(run: () => Promise<void>, intervalMs: number): () => Promise<void> {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return; // a slow run is still at it
    running = run()
      .catch(() => undefined)
      .finally(() => (running = null));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
