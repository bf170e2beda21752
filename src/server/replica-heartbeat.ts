// Announces this API replica in Redis (for resourceUtilization), refreshed every beat and expiring after
// three missed ones.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { apiReplicaKey } from '../domain/resources/resource-service.js';

export function startReplicaHeartbeat(redis: Redis, prefix: string, replicaId: string, intervalMs: number, connections: () => number): () => Promise<void> {
  const startedAt = new Date().toISOString();
  const key = apiReplicaKey(prefix, replicaId);
  const beat = () =>
    redis
      .set(key, JSON.stringify({ replicaId, host: hostname(), pid: process.pid, connections: connections(), startedAt, at: new Date().toISOString() }), 'PX', intervalMs * 3)
      .catch(() => undefined);
  void beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.del(key).catch(() => undefined);
  };
}
