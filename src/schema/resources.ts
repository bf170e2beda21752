import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../builder.js';
import type { ApiReplicaStats, ChildStats, QueueStats, ResourceSnapshot, WorkerStats } from '../domain/resources/resource-service.js';
import type { TaskQueue } from '../generated/prisma/enums.js';
import { TaskQueueEnum } from './enums.js';

const QueueStatsRef = builder.objectRef<QueueStats>('QueueStats').implement({
  description: 'Jobs in one BullMQ queue.',
  fields: (t) => ({
    queue: t.field({ type: TaskQueueEnum, resolve: (q) => q.queue }),
    waiting: t.exposeInt('waiting'),
    active: t.exposeInt('active'),
    delayed: t.exposeInt('delayed', { description: 'Scheduled (runAt), waiting for an org lock, or waiting to retry.' }),
    failed: t.exposeInt('failed', { description: 'Failed jobs BullMQ still keeps (the last 5000 per queue).' }),
  }),
});

const QueueSlotsRef = builder.objectRef<{ queue: TaskQueue; slots: number }>('QueueSlots').implement({
  fields: (t) => ({
    queue: t.field({ type: TaskQueueEnum, resolve: (s) => s.queue }),
    slots: t.exposeInt('slots', { description: 'Tasks of this queue the worker runs at once.' }),
  }),
});

const ChildStatsRef = builder.objectRef<ChildStats>('TaskProcess').implement({
  description: 'The child process running one task.',
  fields: (t) => ({
    taskId: t.field({
      type: 'ID',
      description: 'Global id of the task.',
      resolve: (c) => encodeGlobalID('Task', c.taskId),
    }),
    pid: t.exposeInt('pid', { nullable: true }),
    workerId: t.exposeString('workerId'),
    cpuPercent: t.exposeFloat('cpuPercent', { nullable: true, description: 'CPU use since the previous sample (100 = one core).' }),
    rssBytes: t.exposeFloat('rssBytes', { nullable: true, description: 'Resident memory in bytes.' }),
  }),
});

const WorkerStatsRef = builder.objectRef<WorkerStats>('WorkerProcess').implement({
  description: 'A worker process that announced itself within the last three heartbeats.',
  fields: (t) => ({
    workerId: t.exposeString('workerId', { description: 'host:pid:nonce (the nonce tells apart two lives of a worker with the same host name and pid)' }),
    host: t.exposeString('host'),
    pid: t.exposeInt('pid'),
    queues: t.field({ type: [TaskQueueEnum], resolve: (w) => w.queues }),
    concurrency: t.field({
      type: [QueueSlotsRef],
      resolve: (w) => Object.entries(w.concurrency).map(([queue, slots]) => ({ queue: queue as TaskQueue, slots: slots ?? 0 })),
    }),
    busySlots: t.exposeInt('busy'),
    startedAt: t.field({ type: 'DateTime', resolve: (w) => new Date(w.startedAt) }),
    lastSeenAt: t.field({ type: 'DateTime', resolve: (w) => new Date(w.at) }),
  }),
});

const ApiReplicaRef = builder.objectRef<ApiReplicaStats>('ApiReplica').implement({
  description: 'An API process that announced itself within the last three heartbeats.',
  fields: (t) => ({
    replicaId: t.exposeString('replicaId', { description: 'host:pid:port' }),
    host: t.exposeString('host'),
    pid: t.exposeInt('pid'),
    webSocketConnections: t.exposeInt('connections'),
    startedAt: t.field({ type: 'DateTime', resolve: (r) => new Date(r.startedAt) }),
    lastSeenAt: t.field({ type: 'DateTime', resolve: (r) => new Date(r.at) }),
  }),
});

export const ResourceUtilizationRef = builder.objectRef<ResourceSnapshot>('ResourceUtilization').implement({
  description: 'Queues, workers, task processes and API replicas at one moment.',
  fields: (t) => ({
    at: t.field({ type: 'DateTime', resolve: (s) => s.at }),
    queues: t.field({ type: [QueueStatsRef], resolve: (s) => s.queues }),
    workers: t.field({ type: [WorkerStatsRef], resolve: (s) => s.workers }),
    runningTasks: t.field({ type: [ChildStatsRef], resolve: (s) => s.children }),
    apiReplicas: t.field({ type: [ApiReplicaRef], resolve: (s) => s.apiReplicas }),
  }),
});
