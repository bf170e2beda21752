// The three BullMQ queues tasks wait in. Postgres is the source of truth for a task; a job only carries the
// task id, so nothing of a task's input (and never a credential) is copied into Redis.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TaskQueue, TaskType } from '../generated/prisma/enums.js';

export const queueNames: Record<TaskQueue, string> = { CRITICAL: 'critical', NORMAL: 'normal', BATCH: 'batch' };

export interface TaskJobData {
  taskId: string;
}

export interface EnqueueRequest {
  taskId: string;
  jobId: string;
  type: TaskType;
  queue: TaskQueue;
  /** Switchyard priority, 0..100, higher first. */
  priority: number;
  runAt: Date | null;
}

/**
 * BullMQ runs lower numbers first and treats 0 as "no priority" (ahead of every prioritised job), so
 * Switchyard's 0..100 (higher first) maps onto 101..1.
 */
export function bullPriority(priority: number): number {
  return 101 - priority;
}

export class TaskQueues {
  private readonly queues: Record<TaskQueue, Queue<TaskJobData>>;

  constructor(connection: Redis, prefix: string) {
    const make = (queue: TaskQueue) => new Queue<TaskJobData>(queueNames[queue], { connection, prefix });
    this.queues = { CRITICAL: make('CRITICAL'), NORMAL: make('NORMAL'), BATCH: make('BATCH') };
  }

  get(queue: TaskQueue): Queue<TaskJobData> {
    return this.queues[queue];
  }

  async enqueue(request: EnqueueRequest): Promise<void> {
    const delay = request.runAt ? Math.max(0, request.runAt.getTime() - Date.now()) : 0;
    await this.queues[request.queue].add(
      request.type,
      { taskId: request.taskId },
      {
        jobId: request.jobId,
        priority: bullPriority(request.priority),
        delay,
        // Task history lives in Postgres; Redis keeps only a short tail for BullMQ's own tooling.
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
      },
    );
  }

  /** Removes a waiting or delayed job. False when the job is already running (locked by a worker). */
  async remove(queue: TaskQueue, jobId: string): Promise<boolean> {
    const job = await this.queues[queue].getJob(jobId);
    if (!job) return true;
    return (await this.queues[queue].remove(jobId)) === 1;
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((queue) => queue.close()));
  }
}
