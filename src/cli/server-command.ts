// `switchyard start` (API and workers in one process), `switchyard serve` (API only) and
// `switchyard worker` (workers only). Each migrates first, runs until SIGTERM/SIGINT, then shuts down in
// order: stop taking requests and jobs, let running work finish (aborting what outlasts the timeout), close
// queues, Prisma and Redis.
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';
import type { Env } from '../env.js';
import { TaskEventFeed } from '../events/task-event-feed.js';
import { waitForRedis } from '../redis.js';
import { runAs } from '../run-as.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { createApp, type App, type AppOptions } from '../server/create-app.js';
import type { WorkerHost } from '../workers/worker-host.js';
import { runMigrations } from './migrate-command.js';
import { createWorkerHost, prepareChildSnapshotBeforeSwitch, workerOptionsFromArgs } from './worker-command.js';


/** Everything `createApp` takes, from the environment: the one place the API's settings are read. */
export function appOptionsFromEnv(env: Env, runtime: Runtime, logger: Logger, feed: TaskEventFeed): AppOptions {
  return {
    services: runtime.services,
    redis: runtime.redis,
    logger,
    graphiql: env.SWITCHYARD_GRAPHIQL,
    feed,
    prefix: env.SWITCHYARD_QUEUE_PREFIX,
    heartbeatMs: env.SWITCHYARD_HEARTBEAT_MS,
    webhookMaxBytes: env.SWITCHYARD_WEBHOOK_MAX_BYTES,
    webhookDeliveryRetentionDays: env.SWITCHYARD_WEBHOOK_DELIVERY_RETENTION_DAYS,
    bodyLimits: { maxRequestBytes: env.SWITCHYARD_MAX_REQUEST_BYTES, maxUploadBytes: env.SWITCHYARD_MAX_UPLOAD_BYTES },
    rateLimits: { api: env.SWITCHYARD_RATE_LIMIT_API, webhooks: env.SWITCHYARD_RATE_LIMIT_WEBHOOKS },
    trustedProxies: env.SWITCHYARD_TRUSTED_PROXIES,
    operationLimits: {
      maxDepth: env.SWITCHYARD_GRAPHQL_MAX_DEPTH,
      maxAliases: env.SWITCHYARD_GRAPHQL_MAX_ALIASES,
      maxFields: env.SWITCHYARD_GRAPHQL_MAX_FIELDS,
      maxNodes: env.SWITCHYARD_GRAPHQL_MAX_NODES,
      maxTokens: env.SWITCHYARD_GRAPHQL_MAX_TOKENS,
      maxNesting: env.SWITCHYARD_GRAPHQL_MAX_NESTING,
      introspection: env.SWITCHYARD_INTROSPECTION ?? env.NODE_ENV !== 'production',
    },
    subscriptionLimits: {
      maxSubscriptionsPerConnection: env.SWITCHYARD_WS_MAX_SUBSCRIPTIONS,
      maxBufferedBytes: env.SWITCHYARD_WS_MAX_BUFFERED_BYTES,
      maxConnectionsPerToken: env.SWITCHYARD_WS_MAX_CONNECTIONS_PER_TOKEN,
    },
  };
}

export interface ServeOptions {
  api: boolean;
  workers: boolean;
  workerArgs: string[];
}

export async function serve(env: Env, logger: Logger, options: ServeOptions): Promise<void> {
  const selection = options.workers ? workerOptionsFromArgs(env, options.workerArgs) : null;
  let runtime: Runtime | null = null;
  let app: App | null = null;
  let workers: WorkerHost | null = null;
  let feed: TaskEventFeed | null = null;

  /**
   * Closes whatever has started: stop taking requests and jobs, drain, then queues, Prisma, Redis. The API and the
   * workers close side by side: the API's close waits for its requests in flight (an upload still streaming), and
   * the workers must not go on taking jobs meanwhile, only to be cut off at the deadline. A step that fails (an API
   * whose port was taken has nothing to close) does not keep the next from running.
   */
  const closeStarted = async () => {
    const close = async (name: string, step: (() => Promise<unknown> | void) | null) => {
      if (step) await Promise.resolve(step()).catch((error: unknown) => logger.error({ err: error }, `closing the ${name} failed`));
    };
    await Promise.all([
      close('API', app && (() => app!.close())).then(() => close('event feed', feed && (() => feed!.close()))),
      close('workers', workers && (() => workers!.close(env.SWITCHYARD_SHUTDOWN_TIMEOUT_MS))),
    ]);
    await close('queues, Prisma and Redis', runtime && (() => runtime!.close()));
  };
  /**
   * From a signal (or a failed start-up) on, the process exits by this deadline whatever still hangs: a close step,
   * or a start-up step waiting for a Redis that is down (BullMQ's connection waits for it without a limit).
   */
  let deadline: NodeJS.Timeout | undefined;
  const armDeadline = () => {
    deadline ??= setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
      // Drain time, then the abort → SIGTERM → SIGKILL escalation of children still running, then a margin.
    }, env.SWITCHYARD_SHUTDOWN_TIMEOUT_MS + 2 * env.SWITCHYARD_KILL_GRACE_MS + 5000).unref();
  };
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    armDeadline();
    await closeStarted();
    logger.info('stopped');
    process.exit(0);
  };
  // Signals are handled from the start. One that arrives while a step of the start-up is under way (migrating,
  // reconciling) stops the process once that step ends, with the same orderly drain as later: in `start`, workers
  // may already be running tasks while the API is still being set up. A step that does not end (a worker waiting
  // for Redis) is cut off by the shutdown deadline, armed at the signal.
  let signalled: string | null = null;
  let signalledAt = 0;
  let started = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // One Ctrl-C can arrive twice: the terminal signals the whole process group, and `npm start` passes its own
      // SIGINT on to this process as well. A repeat within a second is that; a later one means "stop now".
      if (Date.now() - signalledAt < 1000) return;
      logger.warn({ signal }, 'signalled again: exiting at once, without waiting for running tasks');
      process.exit(128 + osConstants.signals[signal]);
    }
    signalled = signal;
    signalledAt = Date.now();
    if (started) void stop(signal);
    else armDeadline();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await runMigrations(env, logger);
    if (signalled) return stop(signalled);
    runtime = await createRuntime(env, logger);
    // Made while still root, where the children's user cannot change it (child-snapshot.ts).
    const snapshot = selection && env.SWITCHYARD_RUN_AS && env.SWITCHYARD_CHILD_SNAPSHOT ? await prepareChildSnapshotBeforeSwitch(env, logger, env.SWITCHYARD_RUN_AS) : undefined;
    if (signalled) return stop(signalled);
    // What only root may read (a key file) has been read; no task child has been forked yet.
    if (env.SWITCHYARD_RUN_AS) logger.info({ ...runAs(env.SWITCHYARD_RUN_AS), runAs: env.SWITCHYARD_RUN_AS }, 'switched user');
    if (!(await waitForRedis(runtime.redis, 5000))) {
      // Workers start only once Redis answers (BullMQ waits for it); an API alone serves, not ready, meanwhile.
      logger.warn(
        selection
          ? `Redis is not reachable yet; the workers${options.api ? ', and then the API,' : ''} start when it is`
          : 'Redis is not reachable yet; serving anyway, /readyz reports 503 until it is',
      );
    }
    if (signalled) return stop(signalled);
    if (selection) {
      workers = createWorkerHost(runtime, logger, selection, snapshot);
      await workers.start();
    }
    if (signalled) return stop(signalled);
    if (options.api) {
      feed = new TaskEventFeed(env.REDIS_URL, env.SWITCHYARD_QUEUE_PREFIX);
      app = createApp(appOptionsFromEnv(env, runtime, logger, feed));
      const address = await app.listen(env.PORT, env.HOST);
      logger.info({ url: `http://${address.address}:${address.port}/graphql` }, 'Switchyard API listening');
    }
  } catch (error) {
    // A process that failed to start must not linger half-started (a worker's heartbeat beating with no queue
    // consumed, connections open): it closes what did start and exits, so a supervisor restarts it.
    logger.fatal({ err: error }, 'switchyard failed to start');
    armDeadline();
    await closeStarted();
    process.exit(1);
  }
  started = true;
  if (signalled) return stop(signalled);
}
