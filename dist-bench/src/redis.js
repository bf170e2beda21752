import { Redis } from 'ioredis';
/**
 * A connection for request-path commands (enqueueing, readiness). Commands fail fast while Redis is down
 * instead of piling up in ioredis's offline queue, so a request gets a clear error rather than a hang.
 */
export function createCommandRedis(url, logger) {
    const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: 'switchyard-api' });
    let reported = false;
    redis.on('error', (error) => {
        // ioredis reports every reconnect attempt; one line per outage is enough.
        if (!reported)
            logger.warn({ err: error.message }, 'Redis connection error; retrying');
        reported = true;
    });
    redis.on('ready', () => {
        if (reported)
            logger.info('Redis connection restored');
        reported = false;
    });
    return redis;
}
/** Waits until the connection is ready, or gives up after `timeoutMs` (the caller decides what that means). */
export function waitForRedis(redis, timeoutMs) {
    if (redis.status === 'ready')
        return Promise.resolve(true);
    return new Promise((resolve) => {
        const timer = setTimeout(() => {
            redis.off('ready', onReady);
            resolve(false);
        }, timeoutMs);
        const onReady = () => {
            clearTimeout(timer);
            resolve(true);
        };
        redis.once('ready', onReady);
    });
}
