// What the installation is doing right now: queue depths from BullMQ, and the workers, their task children
// and the API replicas that announced themselves (heartbeat keys that expire after three missed beats, so a
// killed process disappears by itself).
import type { Redis } from 'ioredis';
import type { TaskQueue } from '../../generated/prisma/enums.js';
import type { TaskQueues } from '../../queues/task-queues.js';

export interface QueueStats {
  queue: TaskQueue;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface ChildStats {
  taskId: string;
  pid: number | null;
  workerId: string;
  cpuPercent: number | null;
  rssBytes: number | null;
}

export interface WorkerStats {
  workerId: string;
  host: string;
  pid: number;
  queues: TaskQueue[];
  concurrency: Partial<Record<TaskQueue, number>>;
  busy: number;
  startedAt: string;
  at: string;
  children: Array<Omit<ChildStats, 'workerId'>>;
}

export interface ApiReplicaStats {
  replicaId: string;
  host: string;
  pid: number;
  connections: number;
  startedAt: string;
  at: string;
}

export interface ResourceSnapshot {
  at: Date;
  queues: QueueStats[];
  workers: WorkerStats[];
  children: ChildStats[];
  apiReplicas: ApiReplicaStats[];
}

export function apiReplicaKey(prefix: string, replicaId: string): string {
  return `${prefix}:api:${replicaId}`;
}

export class ResourceService {
  constructor(
    private readonly queues: TaskQueues,
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async snapshot(): Promise<ResourceSnapshot> {
    const [queues, workers, apiReplicas] = await Promise.all([
      this.queueStats(),
      this.heartbeats<WorkerStats>(`${this.prefix}:worker:*`),
      this.heartbeats<ApiReplicaStats>(`${this.prefix}:api:*`),
    ]);
    const children = workers.flatMap((worker) => worker.children.map((child) => ({ ...child, workerId: worker.workerId })));
    return { at: new Date(), queues, workers, children, apiReplicas };
  }

  private async queueStats(): Promise<QueueStats[]> {
    const names: TaskQueue[] = ['CRITICAL', 'NORMAL', 'BATCH'];
    return Promise.all(
      names.map(async (queue) => {
        const counts = await this.queues.get(queue).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
        return {
          queue,
          waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          active: counts.active ?? 0,
          delayed: counts.delayed ?? 0,
          failed: counts.failed ?? 0,
        };
      }),
    );
  }

  private async heartbeats<T>(pattern: string): Promise<T[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys);
    return values.flatMap((value) => {
      if (!value) return [];
      try {
        return [JSON.parse(value) as T];
      } catch {
        return [];
      }
    });
  }
}
