// Inbound webhooks: sources (endpoints with a shared secret in the secret store), rules (which deliveries
// become which tasks) and the delivery log. A delivery is verified on its raw body, recorded once per sender
// delivery id, matched against the source's rules, and turned into tasks. No Salesforce work happens here.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { WebhookDelivery, WebhookRule, WebhookSource } from '../../generated/prisma/client.js';
import type { WebhookKind } from '../../generated/prisma/enums.js';
import type { SecretStore } from '../../secrets/secret-store.js';
import { matches } from '../../webhooks/glob.js';
import type { NormalisedDelivery } from '../../webhooks/events.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import type { AuditService } from '../audit/audit-service.js';
import { NotFoundError } from '../errors.js';
import { rawId } from '../ids.js';
import type { TaskJournal } from '../tasks/task-journal.js';
import { taskParamSchemas } from '../tasks/task-params.js';
import { taskTypes, type TaskService } from '../tasks/task-service.js';
import { parseInput } from '../validation.js';

/** How long a source's secret is kept in memory; a rotation reaches other replicas within this time. */
const secretCacheMs = 30_000;

const sourceInput = z.object({
  kind: z.enum(['GITHUB', 'GITLAB', 'SALESFORCE', 'CI']),
  name: z.string().trim().min(1).max(100),
});

const globField = z.string().trim().min(1).max(200).nullish();
const ruleInput = z.object({
  name: z.string().trim().min(1).max(100),
  event: z.string().trim().min(1).max(200).nullish(),
  repository: globField,
  ref: globField,
  taskType: z.enum(taskTypes),
  org: z.string().trim().min(1),
  params: z.unknown().optional(),
  queue: z.enum(['CRITICAL', 'NORMAL', 'BATCH']).nullish(),
  priority: z.number().int().min(0).max(100).default(50),
  enabled: z.boolean().default(true),
});
export type WebhookRuleInput = z.input<typeof ruleInput> & { sourceId: string };

export interface DeliveryOutcome {
  delivery: WebhookDelivery;
  duplicate: boolean;
}

export interface DeliveryFilter {
  sourceId?: string | null;
  status?: Array<'PROCESSED' | 'IGNORED' | 'FAILED'> | null;
  event?: string | null;
}

export class WebhookService {
  private readonly secretCache = new Map<string, { secret: string; until: number }>();
  /** Deliveries being acted on in this process, by source and delivery key. */
  private readonly inFlight = new Map<string, Promise<DeliveryOutcome>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
    private readonly audit: AuditService,
    private readonly tasks: TaskService,
    private readonly journal: TaskJournal,
    private readonly storedPayloadBytes: number,
  ) {}

  // --- sources ---

  /** Creates a source; its secret is returned this once. */
  async createSource(actor: Principal, input: { kind: WebhookKind; name: string }): Promise<{ source: WebhookSource; secret: string }> {
    const data = parseInput(sourceInput, input);
    const secret = randomBytes(32).toString('base64url');
    const id = crypto.randomUUID();
    const secretRef = `webhooks/${id}`;
    await this.secrets.put(secretRef, { secret });
    const source = await this.prisma.$transaction(async (tx) => {
      const created = await tx.webhookSource.create({ data: { id, kind: data.kind, name: data.name, secretRef, createdBy: actorLabel(actor) } });
      await this.audit.record(tx, actor, 'webhook.source.create', 'WebhookSource', id, { kind: data.kind, name: data.name });
      return created;
    });
    return { source, secret };
  }

  async rotateSourceSecret(actor: Principal, sourceId: string): Promise<{ source: WebhookSource; secret: string }> {
    const source = await this.requireSource(sourceId);
    const secret = randomBytes(32).toString('base64url');
    await this.secrets.put(source.secretRef, { secret });
    this.secretCache.delete(source.id);
    await this.prisma.$transaction((tx) => this.audit.record(tx, actor, 'webhook.source.rotate', 'WebhookSource', source.id));
    return { source, secret };
  }

  async deleteSource(actor: Principal, sourceId: string): Promise<WebhookSource> {
    const source = await this.requireSource(sourceId);
    await this.prisma.$transaction(async (tx) => {
      await tx.webhookSource.delete({ where: { id: source.id } });
      await this.audit.record(tx, actor, 'webhook.source.delete', 'WebhookSource', source.id, { name: source.name });
    });
    await this.secrets.delete(source.secretRef);
    this.secretCache.delete(source.id);
    return source;
  }

  async requireSource(sourceId: string): Promise<WebhookSource> {
    const source = await this.prisma.webhookSource.findUnique({ where: { id: sourceId } });
    if (!source) throw new NotFoundError('WEBHOOK_SOURCE_NOT_FOUND', 'No webhook source with that id');
    return source;
  }

  listSources<T extends Omit<Prisma.WebhookSourceFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.webhookSource.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  countSources(): Promise<number> {
    return this.prisma.webhookSource.count();
  }

  /** The source and its secret, for verifying a delivery; null when the id is unknown. */
  async sourceForDelivery(kind: WebhookKind, sourceId: string): Promise<{ source: WebhookSource; secret: string } | null> {
    const id = rawId(sourceId, 'WebhookSource');
    if (!id) return null;
    const source = await this.prisma.webhookSource.findUnique({ where: { id } });
    if (!source || source.kind !== kind) return null;
    const cached = this.secretCache.get(id);
    if (cached && cached.until > Date.now()) return { source, secret: cached.secret };
    const value = await this.secrets.get(source.secretRef);
    if (!value?.secret) return null;
    this.secretCache.set(id, { secret: value.secret, until: Date.now() + secretCacheMs });
    return { source, secret: value.secret };
  }

  // --- rules ---

  async createRule(actor: Principal, input: WebhookRuleInput): Promise<WebhookRule> {
    const data = parseInput(ruleInput, input);
    const source = await this.requireSource(rawId(input.sourceId, 'WebhookSource') ?? '00000000-0000-0000-0000-000000000000');
    const params = parseInput(taskParamSchemas[data.taskType], data.params ?? {}, ['params']);
    if (!(await this.prisma.org.findUnique({ where: { alias: data.org }, select: { id: true } }))) {
      throw new NotFoundError('ORG_NOT_FOUND', `No org with alias "${data.org}"`);
    }
    return this.prisma.webhookRule.create({
      data: {
        name: data.name,
        sourceId: source.id,
        event: data.event ?? null,
        repository: data.repository ?? null,
        ref: data.ref ?? null,
        taskType: data.taskType,
        orgAlias: data.org,
        params: params as Prisma.InputJsonValue,
        queue: data.queue ?? null,
        priority: data.priority,
        enabled: data.enabled,
        createdBy: actorLabel(actor),
      },
    });
  }

  async updateRule(ruleId: string, patch: { enabled?: boolean | null; priority?: number | null; name?: string | null }): Promise<WebhookRule> {
    const rule = await this.prisma.webhookRule.findUnique({ where: { id: ruleId } });
    if (!rule) throw new NotFoundError('WEBHOOK_RULE_NOT_FOUND', 'No webhook rule with that id');
    const data = parseInput(ruleInput.pick({ enabled: true, priority: true, name: true }).partial(), {
      enabled: patch.enabled ?? undefined,
      priority: patch.priority ?? undefined,
      name: patch.name ?? undefined,
    });
    return this.prisma.webhookRule.update({ where: { id: ruleId }, data });
  }

  async deleteRule(ruleId: string): Promise<WebhookRule> {
    const rule = await this.prisma.webhookRule.findUnique({ where: { id: ruleId } });
    if (!rule) throw new NotFoundError('WEBHOOK_RULE_NOT_FOUND', 'No webhook rule with that id');
    await this.prisma.webhookRule.delete({ where: { id: ruleId } });
    return rule;
  }

  listRules<T extends Omit<Prisma.WebhookRuleFindManyArgs, 'where' | 'orderBy'>>(sourceId: string | null, query: T) {
    return this.prisma.webhookRule.findMany({ ...query, where: sourceId ? { sourceId } : {}, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  countRules(sourceId: string | null): Promise<number> {
    return this.prisma.webhookRule.count({ where: sourceId ? { sourceId } : {} });
  }

  // --- deliveries ---

  /**
   * Records a verified delivery once and acts on it. A repeated delivery id answers with the first outcome
   * and does nothing else.
   */
  async accept(source: WebhookSource, delivery: NormalisedDelivery, payload: unknown, rawSize: number): Promise<DeliveryOutcome> {
    // A copy arriving while the first is still being acted on (a sender retrying on a slow answer) waits for
    // the first outcome instead of reading the row before its rules have fired. Per process; across replicas
    // the unique key still prevents double work.
    const flightKey = `${source.id}:${delivery.deliveryKey.slice(0, 200)}`;
    const pending = this.inFlight.get(flightKey);
    if (pending) {
      const first = await pending.catch(() => null);
      if (first) return { delivery: first.delivery, duplicate: true };
    }
    const run = this.acceptOnce(source, delivery, payload, rawSize);
    this.inFlight.set(flightKey, run);
    try {
      return await run;
    } finally {
      if (this.inFlight.get(flightKey) === run) this.inFlight.delete(flightKey);
    }
  }

  private async acceptOnce(source: WebhookSource, delivery: NormalisedDelivery, payload: unknown, rawSize: number): Promise<DeliveryOutcome> {
    const stored = rawSize <= this.storedPayloadBytes;
    let record: WebhookDelivery;
    try {
      record = await this.prisma.webhookDelivery.create({
        data: {
          sourceId: source.id,
          deliveryKey: delivery.deliveryKey.slice(0, 200),
          event: delivery.event.slice(0, 200),
          repository: delivery.repository,
          ref: delivery.ref,
          status: 'IGNORED',
          matchedRuleIds: [],
          taskIds: [],
          payload: stored ? (payload as Prisma.InputJsonValue) : undefined,
          payloadTruncated: !stored,
        },
      });
    } catch (error) {
      if ((error as { code?: string }).code !== 'P2002') throw error;
      const first = await this.prisma.webhookDelivery.findUniqueOrThrow({
        where: { sourceId_deliveryKey: { sourceId: source.id, deliveryKey: delivery.deliveryKey.slice(0, 200) } },
      });
      return { delivery: first, duplicate: true };
    }

    const errors: string[] = [];
    if (source.kind === 'CI' && delivery.taskId) await this.attachToTask(delivery, errors);
    const rules = await this.prisma.webhookRule.findMany({ where: { sourceId: source.id, enabled: true }, orderBy: { createdAt: 'asc' } });
    const matched = rules.filter((rule) => matches(rule.event, delivery.event) && matches(rule.repository, delivery.repository) && matches(rule.ref, delivery.ref));
    const taskIds: string[] = [];
    for (const rule of matched) {
      try {
        const { spec } = await this.tasks.validate({
          type: rule.taskType,
          org: rule.orgAlias,
          params: rule.params,
          queue: rule.queue,
          priority: rule.priority,
        });
        const task = await this.tasks.create(spec, { source: 'WEBHOOK', requestedBy: `webhook:${source.name}/${rule.name}` });
        taskIds.push(task.id);
      } catch (error) {
        errors.push(`rule ${rule.name}: ${(error as Error).message}`);
      }
    }
    const status = errors.length > 0 ? 'FAILED' : matched.length > 0 || delivery.taskId ? 'PROCESSED' : 'IGNORED';
    // IGNORED means no rule matched, no task and no error: the row already says exactly that (it was inserted as
    // IGNORED with empty lists and no error), so skip a no-op UPDATE and its commit.
    if (status === 'IGNORED') return { delivery: record, duplicate: false };
    record = await this.prisma.webhookDelivery.update({
      where: { id: record.id },
      data: { status, matchedRuleIds: matched.map((rule) => rule.id), taskIds, error: errors.length ? errors.join('; ').slice(0, 2000) : null },
    });
    return { delivery: record, duplicate: false };
  }

  listDeliveries<T extends Omit<Prisma.WebhookDeliveryFindManyArgs, 'where' | 'orderBy'>>(filter: DeliveryFilter, query: T) {
    return this.prisma.webhookDelivery.findMany({ ...query, where: this.deliveryWhere(filter), orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }] });
  }

  countDeliveries(filter: DeliveryFilter): Promise<number> {
    return this.prisma.webhookDelivery.count({ where: this.deliveryWhere(filter) });
  }

  private deliveryWhere(filter: DeliveryFilter): Prisma.WebhookDeliveryWhereInput {
    return {
      ...(filter.sourceId ? { sourceId: filter.sourceId } : {}),
      ...(filter.status?.length ? { status: { in: filter.status } } : {}),
      ...(filter.event ? { event: filter.event } : {}),
    };
  }

  /** A CI callback about an existing task: its status and message become a LOG event of the task. */
  private async attachToTask(delivery: NormalisedDelivery, errors: string[]): Promise<void> {
    const taskId = rawId(delivery.taskId!, 'Task');
    const changed = taskId
      ? await this.journal.change(taskId, null, {}, [
          {
            kind: 'LOG',
            payload: {
              level: delivery.status === 'failure' || delivery.status === 'failed' ? 'warn' : 'info',
              message: delivery.message ?? `CI reported ${delivery.status ?? delivery.event}`,
              source: 'ci',
              ...(delivery.status ? { ciStatus: delivery.status } : {}),
              ...(delivery.url ? { url: delivery.url } : {}),
            },
          },
        ])
      : null;
    if (!changed) errors.push('taskId: no such task');
  }
}
