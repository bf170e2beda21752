// /healthz says the process is alive (the edge routes on it: Caddyfile); /readyz says it can do useful work
// (Postgres and Redis answer), for orchestrators (compose's health checks). Readiness reports the shared stores,
// so the edge does not route on it: an outage of one would take every replica out at once.
import type { Redis } from 'ioredis';
import type { PrismaClient } from '../db/prisma.js';

const probeTimeoutMs = 1500;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface Readiness {
  ready: boolean;
  checks: Record<'postgres' | 'redis', { ok: boolean; error?: string }>;
}

async function probe(run: () => Promise<unknown>, what: string): Promise<{ ok: boolean; error?: string }> {
  try {
    await withTimeout(run(), what);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

export async function checkReadiness(prisma: PrismaClient, redis: Redis): Promise<Readiness> {
  const [postgres, redisCheck] = await Promise.all([
    probe(() => prisma.$queryRaw`SELECT 1`, 'PostgreSQL'),
    probe(() => redis.ping(), 'Redis'),
  ]);
  return { ready: postgres.ok && redisCheck.ok, checks: { postgres, redis: redisCheck } };
}
