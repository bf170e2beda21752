import { setTimeout as sleep } from 'node:timers/promises';
import { Repeater } from 'graphql-yoga';
import { builder } from '../builder.js';
import { StopSignal } from '../stop-signal.js';
import type { ResourceSnapshot } from '../domain/resources/resource-service.js';
import { ResourceUtilizationRef } from '../schema/resources.js';

builder.queryField('resourceUtilization', (t) =>
  t.field({
    type: ResourceUtilizationRef,
    authScopes: { read: true },
    resolve: (_root, _args, ctx) => ctx.services.resources.snapshot(),
  }),
);

builder.subscriptionField('resourceUtilization', (t) =>
  t.field({
    type: ResourceUtilizationRef,
    description: 'A snapshot now, then each next one intervalSeconds after the reader asks for it (plus the time taking it).',
    authScopes: { read: true },
    args: { intervalSeconds: t.arg.int({ defaultValue: 5, validate: { min: 1, max: 300 } }) },
    // A Repeater, not a generator: unsubscribing ends the wait under way at once instead of after the next tick.
    // One snapshot at a time: the next is taken an interval after the reader asked for more (when `push`
    // settles), so a reader that stops reading holds the loop and nothing piles up for it. On a timer instead, a
    // stalled SSE reader had a snapshot queued every interval, and the Repeater's 1,025th queued push threw in
    // the timer's callback, which ended the process.
    subscribe: (_root, args, ctx) =>
      new Repeater<ResourceSnapshot>(async (push, stop) => {
        // Raced per pass (StopSignal): racing `stop` itself would add a reaction to it on every pass.
        const stopping = new StopSignal<'stopped'>();
        const stopped = new AbortController();
        void stop.then(() => {
          stopping.fire('stopped');
          stopped.abort();
        });
        const intervalMs = (args.intervalSeconds ?? 5) * 1000;
        while (!stopping.fired) {
          const snapshot = await ctx.services.resources.snapshot().catch(() => null);
          if (snapshot && !stopping.fired) await Promise.race([push(snapshot), stopping.next()]);
          await sleep(intervalMs, undefined, { signal: stopped.signal }).catch(() => undefined);
        }
      }),
    resolve: (snapshot: ResourceSnapshot) => snapshot,
  }),
);
