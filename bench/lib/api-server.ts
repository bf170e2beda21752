// The forked side of the benchmarks' API processes (bench/fanout-server.ts, bench/webhooks-server.ts): the API
// assembled as `switchyard serve` assembles it, the IPC request loop, and the V8 CPU profiler the benchmarks
// switch on and off. The benchmark's side of the protocol is in api-process.ts.
import type { AddressInfo } from 'node:net';
import type { DestinationStream } from 'pino';
import { loadEnv, type Env } from '../../src/env.js';
import { TaskEventFeed } from '../../src/events/task-event-feed.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { waitForRedis } from '../../src/redis.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { CpuProfiler, type Profile } from './profile.js';

/** Replies to the benchmark; a benchmark that has gone away (deadline, Ctrl-C) is not an error here. */
export const send = (message: unknown) => {
  if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
};

/** What an API process serves: createApp's App, or a reference server with the same two methods. */
export interface ServedApp {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

export interface ApiParts {
  env: Env;
  logger: Logger;
  runtime: Runtime;
  feed: TaskEventFeed;
}

/**
 * The same configuration path as `switchyard serve` (src/cli/server-command.ts): loadEnv from
 * BENCH_SWITCHYARD_ENV (a JSON object of Switchyard variables, so nothing comes from the shell), a logger at
 * LOG_LEVEL writing to `logTo`, createRuntime, one TaskEventFeed; then `makeApp` builds what listens, on
 * 127.0.0.1 at a free port. `stop` closes the app, the feed and the runtime, and exits 0. `name` is the
 * process's file name without extension (e.g. `fanout-server`), for the error when it is started by hand.
 */
export async function startApiServer<A extends ServedApp>(
  name: string,
  logTo: DestinationStream,
  makeApp: (parts: ApiParts) => A,
): Promise<ApiParts & { app: A; address: AddressInfo; stop: () => Promise<void> }> {
  const raw = process.env.BENCH_SWITCHYARD_ENV;
  if (!raw) throw new Error(`BENCH_SWITCHYARD_ENV is required (bench/${name}.js is started by bench/${name.replace(/-server$/, '')}.js)`);
  const env = loadEnv(JSON.parse(raw) as NodeJS.ProcessEnv);
  const logger = createLogger(env.LOG_LEVEL, logTo);
  const runtime = await createRuntime(env, logger);
  if (!(await waitForRedis(runtime.redis, 5000))) throw new Error('Redis is not reachable');
  const feed = new TaskEventFeed(env.REDIS_URL, env.SWITCHYARD_QUEUE_PREFIX);
  const parts = { env, logger, runtime, feed };
  const app = makeApp(parts);
  const address = await app.listen(0, '127.0.0.1');
  const stop = async () => {
    await app.close().catch(() => undefined);
    feed.close();
    await runtime.close().catch(() => undefined);
    process.exit(0);
  };
  return { ...parts, app, address, stop };
}

/** The requests every API process answers the same way; the benchmark side is ForkedApi in api-process.ts. */
type CommonRequest = { t: 'profile-start' } | { t: 'profile-stop'; top?: number } | { t: 'stop' };

export interface Profiling {
  /** Sampling interval of the V8 profiler, µs. */
  intervalUs: number;
  /** File name prefix of the kept .cpuprofile files. */
  filePrefix: string;
  /** The reply's figures for a profile: what this benchmark prints. */
  summarise: (profile: Profile, top: number) => object;
  /** The reply's figures to profile-stop when no profile was started. */
  notStarted: object;
}

/**
 * Answers the benchmark's IPC requests: profile-start → profile-started and profile-stop → profile (the V8 CPU
 * profiler, see `profiling`), stop → `stop()`; every other request goes to `handle`. A request that fails ends the
 * process with code 1 (the benchmark then sees it exit instead of waiting for a reply); the benchmark going away
 * stops it.
 */
export function serveRequests<R extends { t: string }>(
  name: string,
  stop: () => Promise<void>,
  profiling: Profiling,
  handle: (request: R) => Promise<void>,
): void {
  const profiler = new CpuProfiler(profiling.intervalUs, profiling.filePrefix);
  process.on('message', (raw) => {
    // Typed as the common requests for the switch; anything else is the benchmark's own, for `handle`.
    const request = raw as CommonRequest;
    void (async () => {
      switch (request.t) {
        case 'profile-start':
          await profiler.start();
          send({ t: 'profile-started' });
          return;
        case 'profile-stop': {
          const taken = await profiler.stop();
          if (!taken) return send({ t: 'profile', ...profiling.notStarted, file: null });
          send({ t: 'profile', file: taken.file, ...profiling.summarise(taken.profile, request.top ?? 25) });
          return;
        }
        case 'stop':
          await stop();
          return;
        default:
          await handle(raw as R);
      }
    })().catch((error) => {
      console.error(`${name}:`, error);
      process.exit(1);
    });
  });
  process.on('disconnect', () => void stop());
}
