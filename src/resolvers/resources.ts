import { Repeater } from 'graphql-yoga';
import { builder } from '../builder.js';
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
    description: 'A snapshot now and then every intervalSeconds.',
    authScopes: { read: true },
    args: { intervalSeconds: t.arg.int({ defaultValue: 5, validate: { min: 1, max: 300 } }) },
    // A Repeater, not a generator: unsubscribing stops the timer at once instead of after the next tick.
    subscribe: (_root, args, ctx) =>
      new Repeater<ResourceSnapshot>(async (push, stop) => {
        const tick = () => void ctx.services.resources.snapshot().then(push, () => undefined);
        tick();
        const timer = setInterval(tick, (args.intervalSeconds ?? 5) * 1000);
        await stop;
        clearInterval(timer);
      }),
    resolve: (snapshot: ResourceSnapshot) => snapshot,
  }),
);
