import { builder } from '../builder.js';
import { TaskQueueEnum, TaskTypeEnum } from './enums.js';

export const WebhookKindEnum = builder.enumType('WebhookKind', { values: ['GITHUB', 'GITLAB', 'SALESFORCE', 'CI'] as const });
export const DeliveryStatusEnum = builder.enumType('DeliveryStatus', {
  description: 'PROCESSED: rules fired (or a CI callback was attached); IGNORED: no rule matched; FAILED: a rule could not create its task.',
  values: ['PROCESSED', 'IGNORED', 'FAILED'] as const,
});

export const WebhookSourceNode = builder.prismaNode('WebhookSource', {
  description: 'An inbound webhook endpoint. Point the sender at `path` on this server, with the secret from creation.',
  id: { field: 'id' },
  authScopes: { manageOrgs: true },
  fields: (t) => ({
    kind: t.expose('kind', { type: WebhookKindEnum }),
    name: t.exposeString('name'),
    path: t.string({ resolve: (source) => `/webhooks/${source.kind.toLowerCase()}/${source.id}` }),
    previousSecretExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Until when deliveries signed with the secret from before the last rotation are still accepted (rotateWebhookSecret\'s previousSecretValidForSeconds); null when only the current secret is.',
      select: { previousSecretExpiresAt: true },
      resolve: (source) => (source.previousSecretExpiresAt && source.previousSecretExpiresAt.getTime() > Date.now() ? source.previousSecretExpiresAt : null),
    }),
    createdBy: t.exposeString('createdBy'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const WebhookRuleNode = builder.prismaNode('WebhookRule', {
  description: 'Turns matching deliveries of its source into a task. Empty match fields match anything; ref and repository are globs.',
  id: { field: 'id' },
  authScopes: { manageOrgs: true },
  fields: (t) => ({
    name: t.exposeString('name'),
    source: t.relation('source', { type: WebhookSourceNode }),
    event: t.exposeString('event', { nullable: true, description: 'push, tag, pull_request.<action>, merge_request.<action>, a platform event name, or a CI status.' }),
    repository: t.exposeString('repository', { nullable: true }),
    ref: t.exposeString('ref', { nullable: true }),
    taskType: t.expose('taskType', { type: TaskTypeEnum }),
    org: t.exposeString('orgAlias'),
    params: t.expose('params', { type: 'JSON' }),
    queue: t.expose('queue', { type: TaskQueueEnum, nullable: true }),
    priority: t.exposeInt('priority'),
    enabled: t.exposeBoolean('enabled'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const WebhookDeliveryNode = builder.prismaNode('WebhookDelivery', {
  description: 'One verified delivery and what came of it.',
  id: { field: 'id' },
  authScopes: { read: true },
  fields: (t) => ({
    source: t.relation('source', { type: WebhookSourceNode }),
    deliveryKey: t.exposeString('deliveryKey', { description: "The sender's delivery id; a repeat is answered with the first outcome." }),
    event: t.exposeString('event'),
    repository: t.exposeString('repository', { nullable: true }),
    ref: t.exposeString('ref', { nullable: true }),
    status: t.expose('status', { type: DeliveryStatusEnum }),
    verified: t.boolean({ description: 'Always true: unverified requests are not stored.', resolve: () => true }),
    matchedRuleIds: t.exposeStringList('matchedRuleIds'),
    taskIds: t.exposeStringList('taskIds'),
    payload: t.expose('payload', { type: 'JSON', nullable: true, description: 'Null when it was larger than the stored-payload limit.' }),
    payloadTruncated: t.exposeBoolean('payloadTruncated'),
    error: t.exposeString('error', { nullable: true }),
    receivedAt: t.expose('receivedAt', { type: 'DateTime' }),
  }),
});

export const WebhookRuleInput = builder.inputType('WebhookRuleInput', {
  fields: (t) => ({
    sourceId: t.id({ required: true }),
    name: t.string({ required: true }),
    event: t.string(),
    repository: t.string(),
    ref: t.string(),
    taskType: t.field({ type: TaskTypeEnum, required: true }),
    org: t.string({ required: true }),
    params: t.field({ type: 'JSON' }),
    queue: t.field({ type: TaskQueueEnum }),
    priority: t.int(),
    enabled: t.boolean(),
  }),
});

export const DeliveryFilterInput = builder.inputType('WebhookDeliveryFilter', {
  fields: (t) => ({
    sourceId: t.id(),
    status: t.field({ type: [DeliveryStatusEnum] }),
    event: t.string(),
  }),
});
