// The child side of runProbe (probe.ts), shared by the probe scripts: answers the one job it is sent over IPC
// with what the named handler returns (or the error it threw), then exits. Every probe also knows the job
// 'es-module-flags': it loads each of its library's deferred dependencies plainly (nothing deferred) and reports
// their `__esModule`, which the stand-ins (src/deferred-modules.ts) answer without loading.
import { createRequire } from 'node:module';
import { deferredStates, resolveDeferred } from '../../dist/deferred-modules.js';

/** `handlers`: job name → function of the message; `dependencies`: the library's deferred dependencies. */
export function serveProbe(handlers, dependencies) {
  const require = createRequire(import.meta.url);
  const all = {
    ...handlers,
    'es-module-flags': () => ({
      flags: Object.fromEntries(dependencies.map((d) => [d.request, require(resolveDeferred(d)).__esModule ?? false])),
      states: deferredStates(dependencies),
    }),
  };
  process.once('message', async (message) => {
    let reply;
    try {
      const handler = all[message.job];
      if (!handler) throw new Error(`unknown probe job ${message.job}`);
      reply = await handler(message);
    } catch (error) {
      reply = { error: String(error?.stack ?? error) };
    }
    process.send(reply, () => process.exit(0));
  });
}
