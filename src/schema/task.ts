import { builder } from '../builder.js';
import { TaskEventKindEnum, TaskQueueEnum, TaskSourceEnum, TaskStatusEnum, TaskTypeEnum } from './enums.js';
import { defaultTimeoutMsFor } from '../domain/tasks/task-params.js';
import { OrgNode } from './org.js';

const TaskErrorRef = builder.objectRef<{ code: string; message: string }>('TaskError').implement({
  description: 'Why a task failed or was cancelled.',
  fields: (t) => ({
    code: t.exposeString('code', { description: 'Stable code, e.g. TIMEOUT, ORG_AUTH_FAILED, CANCELLED.' }),
    message: t.exposeString('message'),
  }),
});

export const TaskEventObject = builder.prismaObject('TaskEvent', {
  description: 'One entry of a task\'s ordered event log.',
  authScopes: { read: true },
  fields: (t) => ({
    seq: t.exposeInt('seq', { description: 'Position in the task\'s log: 1, 2, 3… without gaps.' }),
    cursor: t.string({
      description: 'Resume point: pass it as `after` to Subscription.taskEvents to get only later events.',
      resolve: (event) => String(event.seq),
    }),
    kind: t.expose('kind', { type: TaskEventKindEnum }),
    payload: t.expose('payload', { type: 'JSON' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const TaskNode = builder.prismaNode('Task', {
  description: 'One operation against an org, and everything that happened to it.',
  id: { field: 'id' },
  authScopes: { read: true },
  fields: (t) => ({
    type: t.expose('type', { type: TaskTypeEnum }),
    status: t.expose('status', { type: TaskStatusEnum }),
    queue: t.expose('queue', { type: TaskQueueEnum }),
    priority: t.exposeInt('priority', { description: '0..100; higher runs first within a queue.' }),
    params: t.expose('input', { type: 'JSON', description: 'The validated parameters, with defaults filled in.' }),
    result: t.expose('result', { type: 'JSON', nullable: true }),
    error: t.field({
      type: TaskErrorRef,
      nullable: true,
      resolve: (task) => (task.errorCode ? { code: task.errorCode, message: task.errorMessage ?? '' } : null),
    }),
    progress: t.exposeInt('progress', { description: 'Percent complete, 0..100.' }),
    phase: t.exposeString('phase', { nullable: true }),
    attempts: t.exposeInt('attempts'),
    maxAttempts: t.exposeInt('maxAttempts'),
    source: t.expose('source', { type: TaskSourceEnum }),
    requestedBy: t.exposeString('requestedBy'),
    runAt: t.expose('runAt', { type: 'DateTime', nullable: true }),
    orgAlias: t.exposeString('orgAlias', { description: 'Kept after the org is removed.' }),
    org: t.relation('org', { type: OrgNode, nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    cancelRequestedAt: t.expose('cancelRequestedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'Set when cancelTask was called on the running task, or on a deployment task waiting for a retry whose earlier attempt started a deployment (it runs once more, only to cancel that deployment in Salesforce); it ends CANCELLED once its process has stopped (SUCCEEDED if a deployment it followed had already succeeded).',
    }),
    timeoutMs: t.int({
      description: 'Time limit of one run, in milliseconds.',
      resolve: (task) => task.timeoutMs ?? defaultTimeoutMsFor[task.type],
    }),
    retryBackoffMs: t.exposeInt('backoffMs', { description: 'Wait before the first retry; doubles for each further retry.' }),
    events: t.relatedConnection('events', {
      cursor: 'taskId_seq',
      totalCount: true,
      description: 'The event log in order; resume with `after` set to the last cursor you saw.',
      query: () => ({ orderBy: { seq: 'asc' } }),
    }),
  }),
});

export const TaskFilterInput = builder.inputType('TaskFilter', {
  description: 'Every given field must match; a list matches any of its values.',
  fields: (t) => ({
    status: t.field({ type: [TaskStatusEnum] }),
    type: t.field({ type: [TaskTypeEnum] }),
    org: t.string({ description: 'Org alias.' }),
    queue: t.field({ type: [TaskQueueEnum] }),
    source: t.field({ type: [TaskSourceEnum] }),
  }),
});

export const SubmitTaskInput = builder.inputType('SubmitTaskInput', {
  fields: (t) => ({
    type: t.field({ type: TaskTypeEnum, required: true }),
    org: t.string({ required: true, description: 'Alias of the org to act on.' }),
    params: t.field({
      type: 'JSON',
      description: 'Parameters of the task type; see docs/tasks.md. Defaults to {}.',
    }),
    queue: t.field({ type: TaskQueueEnum, description: 'Defaults by type: ORG_CHECK → CRITICAL, RETRIEVE → BATCH, others NORMAL.' }),
    priority: t.int({ description: '0..100, higher first; default 50.' }),
    maxAttempts: t.int({ description: 'Runs allowed for retryable failures, 1..10; default 3.' }),
    retryBackoffMs: t.int({ description: 'Wait before the first retry, in ms (0..3600000); doubles each retry; default 5000.' }),
    timeoutMs: t.int({ description: 'Time limit of one run in ms; default depends on the type (see docs/tasks.md).' }),
    runAt: t.field({ type: 'DateTime', description: 'Run no earlier than this; the task is SCHEDULED until then.' }),
    idempotencyKey: t.string({
      description:
        'Up to 255 characters, unique per user (e.g. a UUID made once per command). Repeating a submit with the same key answers with the task the first one created (queued now if Redis was down then) instead of creating another; the same key with a different request is refused with IDEMPOTENCY_KEY_REUSED. Kept as long as the task.',
    }),
  }),
});
