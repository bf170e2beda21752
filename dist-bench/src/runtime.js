import { createPrisma } from './db/prisma.js';
import { RedisTaskEventPublisher } from './events/task-event-bus.js';
import { TaskQueues } from './queues/task-queues.js';
import { createCommandRedis } from './redis.js';
import { createSecretStore } from './secrets/create-secret-store.js';
import { resolveSecretKey } from './secrets/local-key.js';
import { createServices } from './services.js';
export async function createRuntime(env, logger) {
    const prisma = createPrisma(env.DATABASE_URL);
    const redis = createCommandRedis(env.REDIS_URL, logger);
    const queues = new TaskQueues(redis, env.SWITCHYARD_QUEUE_PREFIX);
    const secrets = createSecretStore(env, prisma, await resolveSecretKey(env, logger));
    const publisher = new RedisTaskEventPublisher(redis, env.SWITCHYARD_QUEUE_PREFIX);
    const services = createServices({ prisma, secrets, queues, publisher });
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
        },
    };
}
