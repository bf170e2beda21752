// Network helpers for tests that start servers of their own.
import { createServer } from 'node:net';
import type { Redis } from 'ioredis';

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** How many connections listen on a Redis pub/sub channel (PUBSUB NUMSUB): subscribed or not, from the outside. */
export async function channelListeners(redis: Redis, channel: string): Promise<number> {
  return Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]);
}
