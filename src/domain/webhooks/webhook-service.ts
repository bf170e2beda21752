// Inbound webhooks: sources (endpoints with a shared secret in the secret store), rules (which deliveries
// become which tasks) and the delivery log. A delivery is verified on its raw body, recorded once per sender
// delivery id, matched against the source's rules, and turned into tasks. No Salesforce work happens here.
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Prisma, selectsAnything, type PrismaClient } from '../../db/prisma.js';
import type { WebhookDelivery, WebhookRule, WebhookSource } from '../../generated/prisma/client.js';
import type { WebhookKind } from '../../generated/prisma/enums.js';
import type { SecretStore, SecretValue } from '../../secrets/secret-store.js';
import type { SecretWrites } from '../secret-writes.js';
import { matches, matchesIgnoringCase } from '../../webhooks/glob.js';
import { pruneRows } from '../../db/prune-rows.js';
import type { NormalisedDelivery } from '../../webhooks/events.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import type { AuditService } from '../audit/audit-service.js';
import { Batcher } from '../batcher.js';
import { useArtifactParam } from '../artifacts/artifact-service.js';
import { NotFoundError, unlessGone } from '../errors.js';
import { unlessOrgRemoved } from '../orgs/org-removed.js';
import { rawId } from '../ids.js';
import type { TaskJournal } from '../tasks/task-journal.js';
import { checkTestLevelForOrg, taskParamSchemas } from '../tasks/task-params.js';
import { taskTypes, type TaskRequest, type TaskService } from '../tasks/task-service.js';
import { parseInput } from '../validation.js';
import { WebhookSourceCache, type SourceConfig } from './webhook-source-cache.js';

export type { SourceConfig } from './webhook-source-cache.js';

function sourceNotFound(): NotFoundError {
  return new NotFoundError('WEBHOOK_SOURCE_NOT_FOUND', 'No webhook source with that id');
}

function ruleNotFound(): NotFoundError {
  return new NotFoundError('WEBHOOK_RULE_NOT_FOUND', 'No webhook rule with that id');
}

/**
 * Longest time a replica goes on using a source's secret and rules after they changed elsewhere, should the
 * announcement of the change not reach it (see webhook-source-cache.ts).
 */
export const sourceCacheMs = 30_000;

const sourceInput = z.object({
  kind: z.enum(['GITHUB', 'GITLAB', 'SALESFORCE', 'CI']),
  name: z.string().trim().min(1).max(100),
});

/** Longest overlap of a source's old and new secret after a rotation: a week. */
export const maxSecretOverlapSeconds = 7 * 24 * 3600;

/** Longest a rotation may take, its secret-store requests included. */
const rotationTimeoutMs = 60_000;

const rotationInput = z.object({
  previousSecretValidForSeconds: z.number().int().min(0).max(maxSecretOverlapSeconds).default(0),
});

/** A match field: empty (null, left out, or blank) matches anything, as the docs say. */
const matchField = z.preprocess((value) => (typeof value === 'string' && value.trim() === '' ? null : value), z.string().trim().max(200).nullish());
const ruleInput = z.object({
  name: z.string().trim().min(1).max(100),
  event: matchField,
  repository: matchField,
  ref: matchField,
  taskType: z.enum(taskTypes),
  org: z.string().trim().min(1),
  params: z.unknown().optional(),
  queue: z.enum(['CRITICAL', 'NORMAL', 'BATCH']).nullish(),
  priority: z.number().int().min(0).max(100).default(50),
  enabled: z.boolean().default(true),
});
/** A rule as created; `sourceId` is the source's UUID. */
export type WebhookRuleInput = z.input<typeof ruleInput> & { sourceId: string };

/** What the sender is answered: the delivery as first recorded. */
export type DeliveryRecord = Pick<WebhookDelivery, 'id' | 'status' | 'event' | 'taskIds' | 'error'>;

export interface DeliveryOutcome {
  delivery: DeliveryRecord;
  duplicate: boolean;
  /** Its tasks are recorded QUEUED but the queue (Redis) could not take them: a worker queues them once it can. */
  queuedLater?: boolean;
}

const deliveryRecordFields = { id: true, status: true, event: true, taskIds: true, error: true } as const;

/** A verified delivery on its way into the delivery log, with the rules it matched. */
interface PendingDelivery {
  config: SourceConfig;
  delivery: NormalisedDelivery;
  body: Buffer;
  matched: WebhookRule[];
  receivedAt: Date;
}

/** A delivery as its row was written, and whether its tasks wait for the queue (Redis was unavailable). */
interface WrittenDelivery {
  record: DeliveryRecord;
  queuedLater: boolean;
}

/** Tells every API replica that a source or its rules changed (they drop what they cached of it). */
export type SourceChangeAnnouncer = (sourceId: string) => Promise<void>;

export interface DeliveryFilter {
  sourceId?: string | null;
  status?: Array<'PROCESSED' | 'IGNORED' | 'FAILED'> | null;
  event?: string | null;
}

export class WebhookService {
  private readonly sources = new WebhookSourceCache((id) => this.loadSource(id), sourceCacheMs);
  /**
   * Concurrent deliveries share statements: a delivery arriving while a batch is being written goes out with the
   * others that arrived meanwhile, in the next one; without load each goes out alone, at once. One batch at a time
   * makes the largest batches, so the least CPU per delivery: in bench/webhooks.ts two at a time cost 0.07–0.16 ms
   * more API CPU per matched delivery, at the same rate. A delivery waits at most for the batch ahead of its own.
   */
  private readonly deliveries = new Batcher<PendingDelivery, WrittenDelivery | null>((batch) => this.write(batch), {
    maxInFlight: 1,
    maxBatch: 50,
    // Stored payloads travel in the statement: keep one statement to a few MiB however large the payload cap is.
    maxWeight: 4 * 1024 * 1024,
    weigh: ({ body }) => (body.length <= this.storedPayloadBytes ? body.length : 0),
  });
  /** Deliveries being acted on in this process, by source and delivery key. */
  private readonly inFlight = new Map<string, Promise<DeliveryOutcome>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
    private readonly secretWrites: SecretWrites,
    private readonly audit: AuditService,
    private readonly tasks: TaskService,
    private readonly journal: TaskJournal,
    private readonly storedPayloadBytes: number,
    private readonly announceChange: SourceChangeAnnouncer = async () => undefined,
  ) {}

  // --- sources ---

  /** Creates a source; its secret is returned this once. */
  async createSource(actor: Principal, input: { kind: WebhookKind; name: string }): Promise<{ source: WebhookSource; secret: string }> {
    const data = parseInput(sourceInput, input);
    const secret = randomBytes(32).toString('base64url');
    const id = crypto.randomUUID();
    const secretRef = `webhooks/${id}`;
    const source = await this.secretWrites.putThen(secretRef, { secret }, () =>
      this.prisma.$transaction(async (tx) => {
        const created = await tx.webhookSource.create({ data: { id, kind: data.kind, name: data.name, secretRef, createdBy: actorLabel(actor) } });
        await this.audit.record(tx, actor, 'webhook.source.create', 'WebhookSource', id, { kind: data.kind, name: data.name });
        return created;
      }),
    );
    return { source, secret };
  }

  /**
   * Gives the source a new secret. With `previousSecretValidForSeconds`, the secret it replaces is accepted too
   * until then, so the sender can be moved to the new one without deliveries refused meanwhile; without, it is
   * refused at once (a secret that may have leaked). Only the latest replaced secret is kept: rotating again ends
   * an earlier overlap. The overlap's end is kept with the secrets (what verification reads) and on the row (what
   * the API shows).
   */
  async rotateSourceSecret(
    actor: Principal,
    sourceId: string,
    input: { previousSecretValidForSeconds?: number | null } = {},
  ): Promise<{ source: WebhookSource; secret: string }> {
    const { previousSecretValidForSeconds } = parseInput(rotationInput, { previousSecretValidForSeconds: input.previousSecretValidForSeconds ?? undefined });
    const source = await this.requireSource(sourceId);
    const secret = randomBytes(32).toString('base64url');
    const { id, secretRef } = source;
    // One rotation of a source at a time, so each keeps the secret the one before it made (two at once would both
    // keep the same one, and the first's new secret would be lost): an advisory lock held by the transaction.
    // Not a lock on the source's row, which every delivery written for the source waits for, while the secret
    // store is asked.
    const rotate = () =>
      this.prisma.$transaction(
        async (tx) => {
          // A rotation stuck behind another for longer fails rather than hold a connection for the whole timeout.
          await tx.$executeRaw`SET LOCAL lock_timeout = '10s'`;
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`webhook-source-rotation:${id}`}, 0))`;
          const replaced = await this.secrets.get(secretRef);
          const previousSecretExpiresAt = previousSecretValidForSeconds > 0 && replaced?.secret ? new Date(Date.now() + previousSecretValidForSeconds * 1000) : null;
          const value: SecretValue = previousSecretExpiresAt
            ? { secret, previousSecret: replaced!.secret!, previousSecretExpiresAt: previousSecretExpiresAt.toISOString() }
            : { secret };
          try {
            return await this.secretWrites.putThen(secretRef, value, async () => {
              const updated = await tx.webhookSource.update({ where: { id }, data: { previousSecretExpiresAt } });
              await this.audit.record(tx, actor, 'webhook.source.rotate', 'WebhookSource', id, {
                previousSecretValidForSeconds: previousSecretExpiresAt ? previousSecretValidForSeconds : 0,
              });
              return updated;
            });
          } catch (error) {
            // Nothing was recorded: the source keeps the secret it had (the sender still uses it), written back as
            // any secret is (noted first, kept only while the source is there: a deletion meanwhile takes it). A
            // commit that fails after this point leaves the new secret in place, the old one still accepted for
            // the overlap.
            if (replaced) await this.secretWrites.putThen(secretRef, replaced, () => this.requireSource(id)).catch(() => undefined);
            throw error;
          }
        },
        // The secret store is asked twice within (each request up to 10 s with Vault).
        { timeout: rotationTimeoutMs },
      );
    const rotated = await unlessGone(rotate, sourceNotFound);
    await this.sourceChanged(id);
    return { source: rotated, secret };
  }

  async deleteSource(actor: Principal, sourceId: string): Promise<WebhookSource> {
    const source = await this.requireSource(sourceId);
    // Of concurrent deletions, only the one whose delete finds the row records it and removes the secret.
    const deletion = await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          await tx.webhookSource.delete({ where: { id: source.id } });
          await this.audit.record(tx, actor, 'webhook.source.delete', 'WebhookSource', source.id, { name: source.name });
          return this.secretWrites.noteDeletion(tx, source.secretRef);
        }),
      sourceNotFound,
    );
    await this.secretWrites.finish(deletion);
    await this.sourceChanged(source.id);
    return source;
  }

  async requireSource(sourceId: string): Promise<WebhookSource> {
    const source = await this.prisma.webhookSource.findUnique({ where: { id: sourceId } });
    if (!source) throw sourceNotFound();
    return source;
  }

  listSources<T extends Omit<Prisma.WebhookSourceFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.webhookSource.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  countSources(): Promise<number> {
    return this.prisma.webhookSource.count();
  }

  /** The source, its secret and its enabled rules, for verifying a delivery; null when the id is unknown. */
  async sourceForDelivery(kind: WebhookKind, sourceId: string): Promise<SourceConfig | null> {
    const id = rawId(sourceId, 'WebhookSource');
    if (!id) return null;
    const config = await this.sources.get(id);
    return config && config.source.kind === kind ? config : null;
  }

  /** A change announced by another replica (or made here): forget what this process cached of the source. */
  forgetSource(sourceId: string): void {
    this.sources.forget(sourceId);
  }

  private async sourceChanged(sourceId: string): Promise<void> {
    this.sources.forget(sourceId);
    // Best effort: a replica that misses it stops using the old state after sourceCacheMs.
    await this.announceChange(sourceId).catch(() => undefined);
  }

  private async loadSource(id: string): Promise<SourceConfig | null> {
    const [source, rules] = await Promise.all([
      this.prisma.webhookSource.findUnique({ where: { id } }),
      this.prisma.webhookRule.findMany({ where: { sourceId: id, enabled: true }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
    ]);
    if (!source) return null;
    const value = await this.secrets.get(source.secretRef);
    if (!value?.secret) return null;
    // The overlap's end as stored with the secrets: the row's copy may be from before or after (it is written in
    // the same rotation, but not at the same moment).
    const previous =
      value.previousSecret && value.previousSecretExpiresAt ? { secret: value.previousSecret, expiresAt: new Date(value.previousSecretExpiresAt) } : undefined;
    return { source, secret: value.secret, ...(previous ? { previousSecret: previous } : {}), rules };
  }

  // --- rules ---

  async createRule(actor: Principal, input: WebhookRuleInput): Promise<WebhookRule> {
    const data = parseInput(ruleInput, input);
    const source = await this.requireSource(input.sourceId);
    const parsedParams = parseInput(taskParamSchemas[data.taskType], data.params ?? {}, ['params']);
    const org = await this.prisma.org.findUnique({ where: { alias: data.org }, select: { id: true, kind: true } });
    if (!org) throw new NotFoundError('ORG_NOT_FOUND', `No org with alias "${data.org}"`);
    // As submitTask would refuse each task the rule creates.
    checkTestLevelForOrg(data.taskType, parsedParams, org.kind, ['params']);
    // A deployment rule's artifact must exist (each task the rule creates checks it again); naming it keeps it.
    const params = await useArtifactParam(this.prisma, data.taskType, parsedParams, ['params']);
    // Rules decide which org gets which deployments: each change is audited with the change itself.
    const written = this.prisma.$transaction(async (tx) => {
      const created = await tx.webhookRule.create({
      data: {
        name: data.name,
        sourceId: source.id,
        event: data.event ?? null,
        repository: data.repository ?? null,
        ref: data.ref ?? null,
        taskType: data.taskType,
        orgAlias: data.org,
        orgId: org.id,
        params: params as Prisma.InputJsonValue,
        queue: data.queue ?? null,
        priority: data.priority,
        enabled: data.enabled,
        createdBy: actorLabel(actor),
      },
      });
      await this.audit.record(tx, actor, 'webhook.rule.create', 'WebhookRule', created.id, {
        name: created.name,
        sourceId: source.id,
        event: created.event,
        repository: created.repository,
        ref: created.ref,
        taskType: created.taskType,
        org: created.orgAlias,
      });
      return created;
    });
    const rule = await unlessOrgRemoved(written, 'WebhookRule_orgId_fkey', 'the rule');
    await this.sourceChanged(source.id);
    return rule;
  }

  async updateRule(actor: Principal, ruleId: string, patch: { enabled?: boolean | null; priority?: number | null; name?: string | null }): Promise<WebhookRule> {
    const rule = await this.requireRule(ruleId);
    const data = parseInput(ruleInput.pick({ enabled: true, priority: true, name: true }).partial(), {
      enabled: patch.enabled ?? undefined,
      priority: patch.priority ?? undefined,
      name: patch.name ?? undefined,
    });
    const updated = await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          const changed = await tx.webhookRule.update({ where: { id: ruleId }, data });
          await this.audit.record(tx, actor, 'webhook.rule.update', 'WebhookRule', ruleId, data);
          return changed;
        }),
      ruleNotFound,
    );
    await this.sourceChanged(rule.sourceId);
    return updated;
  }

  /** Deletes the rule; answers it as it was, read with `query` (the relations the caller will want of it). */
  async deleteRule<T extends Omit<Prisma.WebhookRuleFindUniqueArgs, 'where'>>(actor: Principal, ruleId: string, query?: T): Promise<WebhookRule> {
    const rule = await this.requireRule(ruleId);
    // What the answer shows of it (its source), read before the deletion: nothing could load it for the rule after.
    const answer = selectsAnything(query) ? await this.prisma.webhookRule.findUnique({ ...(query as T), where: { id: ruleId } }) : null;
    await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          await tx.webhookRule.delete({ where: { id: ruleId } });
          await this.audit.record(tx, actor, 'webhook.rule.delete', 'WebhookRule', ruleId, { name: rule.name, sourceId: rule.sourceId });
        }),
      ruleNotFound,
    );
    await this.sourceChanged(rule.sourceId);
    return (answer as WebhookRule | null) ?? rule;
  }

  private async requireRule(ruleId: string): Promise<WebhookRule> {
    const rule = await this.prisma.webhookRule.findUnique({ where: { id: ruleId } });
    if (!rule) throw ruleNotFound();
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
   * Deletes deliveries received before `cutoff`, a batch at a time (so no statement holds many row locks or
   * runs long), and returns how many. A delivery id seen again after its delivery was deleted counts as new.
   */
  pruneDeliveries(cutoff: Date, batch = 1000): Promise<number> {
    return pruneRows(this.prisma, 'WebhookDelivery', cutoff, batch);
  }

  /**
   * Records a verified delivery once and acts on it. A repeated delivery id, or a signed request sent again under
   * any id, answers with the first outcome and does nothing else. `body` is the JSON object to record: the body the signature was checked on, or its storable copy (webhook-route.ts).
   */
  async accept(config: SourceConfig, delivery: NormalisedDelivery, body: Buffer): Promise<DeliveryOutcome> {
    // A copy arriving while the first is still being acted on (a sender retrying on a slow answer) waits for
    // the first outcome instead of reading the row before its rules have fired. Per process; across replicas
    // the unique key still prevents double work.
    // A copy is known by its delivery key, or by its signature under another key.
    const flightKeys = [
      `${config.source.id}:key:${delivery.deliveryKey.slice(0, 200)}`,
      ...(delivery.signature ? [`${config.source.id}:signature:${delivery.signature}`] : []),
    ];
    const pending = flightKeys.map((key) => this.inFlight.get(key)).find(Boolean);
    if (pending) {
      const first = await pending.catch(() => null);
      if (first) return { delivery: first.delivery, duplicate: true };
    }
    const run = this.acceptOnce(config, delivery, body);
    for (const key of flightKeys) this.inFlight.set(key, run);
    try {
      return await run;
    } finally {
      for (const key of flightKeys) if (this.inFlight.get(key) === run) this.inFlight.delete(key);
    }
  }

  private async acceptOnce(config: SourceConfig, delivery: NormalisedDelivery, body: Buffer, again = true): Promise<DeliveryOutcome> {
    const matched = config.rules.filter(
      (rule) => matches(rule.event, delivery.event) && matchesIgnoringCase(rule.repository, delivery.repository) && matches(rule.ref, delivery.ref),
    );
    const pending: PendingDelivery = { config, delivery, body, matched, receivedAt: new Date() };
    // A batch whose statement failed wrote nothing at all: try this delivery again on its own, so that one bad
    // delivery in a batch (or an org removed since the rules were validated) does not fail the others.
    const written = await this.deliveries.add(pending).catch(async () => (await this.write([pending]))[0] ?? null);
    if (!written) {
      // Recorded already under its delivery key, or, for a copy sent under another id, its signature. Gone again
      // since (pruned, or its source deleted): it is new after all, as a delivery pruned earlier would be.
      const first = await this.prisma.webhookDelivery.findFirst({
        where: {
          sourceId: config.source.id,
          OR: [{ deliveryKey: delivery.deliveryKey.slice(0, 200) }, ...(delivery.signature ? [{ signature: delivery.signature }] : [])],
        },
        orderBy: { receivedAt: 'asc' },
        select: deliveryRecordFields,
      });
      if (!first && again) return this.acceptOnce(config, delivery, body, false);
      if (!first) throw new Error('A delivery was taken for a duplicate of one that is gone');
      return { delivery: first, duplicate: true };
    }
    const { record, queuedLater } = written;
    // A CI callback that names no task: the delivery, already written, says so too.
    if (config.source.kind === 'CI' && delivery.taskId && !(await this.attachToTask(delivery))) {
      const failed = await this.prisma.webhookDelivery.update({
        where: { id: record.id },
        data: { status: 'FAILED', error: [record.error, 'taskId: no such task'].filter(Boolean).join('; ').slice(0, 2000) },
        select: deliveryRecordFields,
      });
      return { delivery: failed, duplicate: false, queuedLater };
    }
    return { delivery: written.record, duplicate: false, queuedLater };
  }

  /**
   * Records deliveries (one, or a batch from concurrent requests) and creates the tasks their matched rules ask
   * for: the rules' tasks are validated first (with one query for all their orgs), so each delivery
   * row is written once, already with its outcome, in ONE statement with all the tasks and their first events.
   * A delivery that is a duplicate (a unique key on source and delivery key, or source and signature) writes
   * nothing, and neither do its tasks. Either the whole statement commits or nothing does, so a batch that throws can be retried. Then the
   * jobs are enqueued; null marks a duplicate.
   */
  private async write(batch: PendingDelivery[]): Promise<Array<WrittenDelivery | null>> {
    const flat = await this.tasks.validateMany(
      batch.flatMap(({ matched }) => matched.map((rule) => ({ type: rule.taskType, org: rule.orgAlias, params: rule.params, queue: rule.queue, priority: rule.priority }))),
    );
    let next = 0;
    const validations = batch.map(({ matched }) => matched.map(() => flat[next++]!));
    const requests: TaskRequest[] = [];
    const rows = batch.map((pending, index) => {
      const { config, delivery, matched } = pending;
      const id = randomUUID();
      const errors: string[] = [];
      const taskIds: string[] = [];
      validations[index]!.forEach((result, ruleIndex) => {
        const rule = matched[ruleIndex]!;
        if (result.status === 'rejected') {
          errors.push(`rule ${rule.name}: ${(result.reason as Error).message}`);
          return;
        }
        // The alias now names another org (the rule's was renamed or removed, and another took the name over): a
        // rule made for a sandbox must not start work on whatever org is called that today.
        if (result.value.spec.orgId !== rule.orgId) {
          errors.push(`rule ${rule.name}: org "${rule.orgAlias}" is not the org this rule was created for (that org was renamed or removed)`);
          return;
        }
        const taskId = randomUUID();
        taskIds.push(taskId);
        requests.push({ spec: result.value.spec, origin: { source: 'WEBHOOK', requestedBy: `webhook:${config.source.name}/${rule.name}` }, id: taskId, gateId: id });
      });
      const record: DeliveryRecord = {
        id,
        status: errors.length > 0 ? 'FAILED' : matched.length > 0 || delivery.taskId ? 'PROCESSED' : 'IGNORED',
        event: delivery.event.slice(0, 200),
        taskIds,
        error: errors.length > 0 ? errors.join('; ').slice(0, 2000) : null,
      };
      return { record, taskIds, row: this.deliveryRow(pending, record) };
    });
    // A queue that cannot take the tasks (Redis down) leaves them QUEUED, for the workers' reconciler to queue once
    // it can: senders such as GitHub never deliver again by themselves, so a refused delivery would be lost.
    const created = await this.tasks.createMany(requests, this.insertDeliveries(rows.map(({ row }) => row)), { queueLater: true });
    const gated = new Set(created.gated);
    return rows.map(({ record, taskIds }) => (gated.has(record.id) ? { record, queuedLater: created.queuedLater && taskIds.length > 0 } : null));
  }

  /** One delivery row with its outcome. The payload is the body the sender signed, as text (Postgres parses it). */
  private deliveryRow({ config, delivery, body, matched, receivedAt }: PendingDelivery, record: DeliveryRecord) {
    const stored = body.length <= this.storedPayloadBytes;
    return {
      id: record.id,
      sourceId: config.source.id,
      deliveryKey: delivery.deliveryKey.slice(0, 200),
      event: record.event,
      repository: delivery.repository,
      ref: delivery.ref,
      status: record.status,
      matchedRuleIds: matched.map((rule) => rule.id),
      taskIds: record.taskIds,
      payload: stored ? body.toString('utf8') : null,
      payloadTruncated: !stored,
      error: record.error,
      receivedAt,
      signature: delivery.signature ?? null,
    };
  }

  /**
   * The INSERT of delivery rows that skips every delivery key, and every signature, already recorded for the
   * source (RETURNING the ids it wrote). The rows travel as one jsonb parameter (see TaskJournal's insert for why),
   * and go in key order, so that two statements sharing keys take their locks in the same order and cannot
   * deadlock. (Two batches holding copies of two signed requests under other ids, in crossed order, could: the
   * statement Postgres aborts is retried one delivery at a time, see acceptOnce.)
   */
  private insertDeliveries(rows: Array<ReturnType<WebhookService['deliveryRow']>>): Prisma.Sql {
    return Prisma.sql`
      INSERT INTO "WebhookDelivery" (id, "sourceId", "deliveryKey", event, repository, ref, status, "matchedRuleIds", "taskIds",
                                     payload, "payloadTruncated", error, "receivedAt", signature)
      SELECT id, "sourceId", "deliveryKey", event, repository, ref, status, "matchedRuleIds", "taskIds", payload::jsonb,
             "payloadTruncated", error, "receivedAt", signature
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS row (
        id uuid, "sourceId" uuid, "deliveryKey" text, event text, repository text, ref text, status "DeliveryStatus",
        "matchedRuleIds" text[], "taskIds" text[], payload text, "payloadTruncated" boolean, error text, "receivedAt" timestamp(3),
        signature text)
      ORDER BY "sourceId", "deliveryKey"
      ON CONFLICT DO NOTHING
      RETURNING id`;
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
  private async attachToTask(delivery: NormalisedDelivery): Promise<boolean> {
    const taskId = rawId(delivery.taskId!, 'Task');
    if (!taskId) return false;
    const changed = await this.journal.change(taskId, null, {}, [
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
    ]);
    return changed !== null;
  }
}
