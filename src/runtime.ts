// Builds and tears down everything a Switchyard API process holds: Postgres, Redis, queues, secret store and
// the domain services on top of them. Shutdown runs in dependency order.
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createPrisma, type PrismaClient } from './db/prisma.js';
import type { Env } from './env.js';
import { RedisTaskEventPublisher } from './events/task-event-bus.js';
import { TaskQueues } from './queues/task-queues.js';
import { createCommandRedis } from './redis.js';
import { createSecretStore } from './secrets/create-secret-store.js';
import { resolveSecretKey } from './secrets/local-key.js';
import { createServices, type Services } from './services.js';

export interface Runtime {
  env: Env;
  logger: Logger;
  prisma: PrismaClient;
  redis: Redis;
  services: Services;
  /** Closes queues, then Prisma, then Redis. */
  close(): Promise<void>;
}

export async function createRuntime(env: Env, logger: Logger): Promise<Runtime> {
  const prisma = createPrisma(env.DATABASE_URL);
  const redis = createCommandRedis(env.REDIS_URL, logger);
  const queues = new TaskQueues(redis, env.SWITCHYARD_QUEUE_PREFIX);
  const secrets = createSecretStore(env, prisma, await resolveSecretKey(env, logger));
  const publisher = new RedisTaskEventPublisher(redis, env.SWITCHYARD_QUEUE_PREFIX);
  const services = createServices({
    prisma,
    secrets,
    queues,
    publisher,
    redis,
    prefix: env.SWITCHYARD_QUEUE_PREFIX,
    artifactDir: path.resolve(env.SWITCHYARD_ARTIFACT_DIR),
    maxUploadBytes: env.SWITCHYARD_MAX_UPLOAD_BYTES,
    checkOrgsOnRegister: env.SWITCHYARD_CHECK_ORGS,
    scheduleMinIntervalSeconds: env.SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS,
    webhookStoredPayloadBytes: env.SWITCHYARD_WEBHOOK_STORED_PAYLOAD_BYTES,
    notificationAllowedNetworks: env.SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS,
    logger,
  });
  return {
    env,
    logger,
    prisma,
    redis,
    services,
    async close() {
      await queues.close().catch((error) => logger.warn({ err: error }, 'closing queues failed'));
      await prisma.$disconnect();
      redis.disconnect();
      secrets.close?.();
    },
  };
}
