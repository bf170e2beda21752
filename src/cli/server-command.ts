// `switchyard start`: migrate, then serve until SIGTERM/SIGINT, then shut down in order: stop taking
// requests, let in-flight ones finish, close queues, Prisma and Redis.
import type { Logger } from 'pino';
import { migrate } from '../db/migrate.js';
import type { Env } from '../env.js';
import { waitForRedis } from '../redis.js';
import { createRuntime } from '../runtime.js';
import { createApp } from '../server/create-app.js';

export async function runMigrations(env: Env, logger: Logger): Promise<void> {
  const result = await migrate(env.DATABASE_URL);
  if (result.createdDatabase) logger.info({ database: result.database }, 'created database');
  logger.info({ applied: result.applied, schema: result.schema }, result.applied.length ? 'applied migrations' : 'database schema is up to date');
}

export async function startServer(env: Env, logger: Logger): Promise<void> {
  await runMigrations(env, logger);
  const runtime = await createRuntime(env, logger);
  if (!(await waitForRedis(runtime.redis, 5000))) {
    logger.warn('Redis is not reachable yet; serving anyway, /readyz reports 503 until it is');
  }
  const app = createApp({ services: runtime.services, redis: runtime.redis, logger, graphiql: env.SWITCHYARD_GRAPHIQL });
  const address = await app.listen(env.PORT, env.HOST);
  logger.info({ url: `http://${address.address}:${address.port}/graphql` }, 'Switchyard API listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, env.SWITCHYARD_SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    await app.close();
    await runtime.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
