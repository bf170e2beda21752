import { builder } from '../builder.js';
import { NotFoundError } from '../domain/errors.js';
import { maxSecretOverlapSeconds } from '../domain/webhooks/webhook-service.js';
import type { WebhookSource } from '../generated/prisma/client.js';
import { DeliveryFilterInput, WebhookKindEnum, WebhookRuleInput, WebhookRuleNode, WebhookSourceNode } from '../schema/webhook.js';
import { actor, parseNodeId } from './ids.js';

const SourceWithSecret = builder.objectRef<{ source: WebhookSource; secret: string }>('CreatedWebhookSource').implement({
  fields: (t) => ({
    source: t.field({ type: WebhookSourceNode, resolve: (created) => created.source }),
    secret: t.string({ description: 'The shared secret. Shown this once; configure it in the sender.', resolve: (created) => created.secret }),
  }),
});

builder.queryFields((t) => ({
  webhookSources: t.prismaConnection({
    type: 'WebhookSource',
    cursor: 'id',
    authScopes: { manageOrgs: true },
    totalCount: (_p, _a, ctx) => ctx.services.webhooks.countSources(),
    resolve: (query, _root, _args, ctx) => ctx.services.webhooks.listSources(query),
  }),
  webhookRules: t.prismaConnection({
    type: 'WebhookRule',
    cursor: 'id',
    authScopes: { manageOrgs: true },
    args: { sourceId: t.arg.id() },
    totalCount: (_p, args, ctx) => ctx.services.webhooks.countRules(args.sourceId ? parseNodeId(args.sourceId, 'WebhookSource', ['sourceId']) : null),
    resolve: (query, _root, args, ctx) =>
      ctx.services.webhooks.listRules(args.sourceId ? parseNodeId(args.sourceId, 'WebhookSource', ['sourceId']) : null, query),
  }),
  webhookDeliveries: t.prismaConnection({
    type: 'WebhookDelivery',
    cursor: 'id',
    authScopes: { read: true },
    description: 'Verified deliveries, newest first.',
    args: { filter: t.arg({ type: DeliveryFilterInput }) },
    totalCount: (_p, args, ctx) => ctx.services.webhooks.countDeliveries(deliveryFilter(args.filter)),
    resolve: (query, _root, args, ctx) => ctx.services.webhooks.listDeliveries(deliveryFilter(args.filter), query),
  }),
}));

function deliveryFilter(filter: { sourceId?: string | null; status?: Array<'PROCESSED' | 'IGNORED' | 'FAILED'> | null; event?: string | null } | null | undefined) {
  return {
    sourceId: filter?.sourceId ? parseNodeId(filter.sourceId, 'WebhookSource', ['filter', 'sourceId']) : null,
    status: filter?.status ?? null,
    event: filter?.event ?? null,
  };
}

builder.mutationFields((t) => ({
  createWebhookSource: t.field({
    type: SourceWithSecret,
    authScopes: { manageOrgs: true },
    args: { kind: t.arg({ type: WebhookKindEnum, required: true }), name: t.arg.string({ required: true }) },
    errors: { dataField: { name: 'created' } },
    resolve: (_root, args, ctx) => ctx.services.webhooks.createSource(actor(ctx), { kind: args.kind, name: args.name }),
  }),
  rotateWebhookSecret: t.field({
    type: SourceWithSecret,
    authScopes: { manageOrgs: true },
    args: {
      id: t.arg.id({ required: true }),
      previousSecretValidForSeconds: t.arg.int({
        description: `Keep accepting the secret being replaced for this many seconds (0..${maxSecretOverlapSeconds}; default 0: refused at once), so the sender can be moved to the new one without refused deliveries. Rotating again ends an earlier overlap.`,
      }),
    },
    errors: { types: [NotFoundError], dataField: { name: 'created' } },
    resolve: (_root, args, ctx) =>
      ctx.services.webhooks.rotateSourceSecret(actor(ctx), parseNodeId(args.id, 'WebhookSource', ['id']), {
        previousSecretValidForSeconds: args.previousSecretValidForSeconds,
      }),
  }),
  deleteWebhookSource: t.field({
    type: WebhookSourceNode,
    authScopes: { manageOrgs: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'source' } },
    resolve: (_root, args, ctx) => ctx.services.webhooks.deleteSource(actor(ctx), parseNodeId(args.id, 'WebhookSource', ['id'])),
  }),
  createWebhookRule: t.field({
    type: WebhookRuleNode,
    authScopes: { manageOrgs: true },
    args: { input: t.arg({ type: WebhookRuleInput, required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'rule' } },
    resolve: (_root, { input }, ctx) =>
      ctx.services.webhooks.createRule(actor(ctx), {
        ...input,
        sourceId: parseNodeId(input.sourceId, 'WebhookSource', ['sourceId']),
        priority: input.priority ?? undefined,
        enabled: input.enabled ?? undefined,
      }),
  }),
  updateWebhookRule: t.field({
    type: WebhookRuleNode,
    authScopes: { manageOrgs: true },
    args: { id: t.arg.id({ required: true }), enabled: t.arg.boolean(), priority: t.arg.int(), name: t.arg.string() },
    errors: { types: [NotFoundError], dataField: { name: 'rule' } },
    resolve: (_root, args, ctx) => ctx.services.webhooks.updateRule(actor(ctx), parseNodeId(args.id, 'WebhookRule', ['id']), args),
  }),
  deleteWebhookRule: t.prismaField({
    type: WebhookRuleNode,
    authScopes: { manageOrgs: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'rule' } },
    // With what the selection asks of it (its source): once the rule is gone nothing could load that for it.
    resolve: (query, _root, args, ctx) => ctx.services.webhooks.deleteRule(actor(ctx), parseNodeId(args.id, 'WebhookRule', ['id']), query),
  }),
}));
