// Outbound notifications: subscribers (URLs) receive signed JSON events when tasks end, through the
// `notifications` BullMQ queue with retries and exponential backoff. Every attempt is recorded. The body is
// signed like inbound Salesforce/CI callbacks: X-Switchyard-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>.
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { Prisma, rawStatements, selectsAnything, type PrismaClient, type RawStatements } from '../../db/prisma.js';
import { pruneRows } from '../../db/prune-rows.js';
import type { NotificationSubscriber, Task } from '../../generated/prisma/client.js';
import type { NotificationJobData, TaskQueues } from '../../queues/task-queues.js';
import type { SecretStore } from '../../secrets/secret-store.js';
import type { SecretWrites } from '../secret-writes.js';
import { guardedPost } from '../../net/guarded-post.js';
import type { OutboundAddressPolicy } from '../../net/outbound-address-policy.js';
import { signTimestamped } from '../../webhooks/signatures.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import type { AuditService } from '../audit/audit-service.js';
import { NotFoundError, unlessGone } from '../errors.js';
import { ExpiringCache } from '../expiring-cache.js';
import { uuidFromName } from '../ids.js';
import { parseInput } from '../validation.js';

export const notificationEvents = ['task.succeeded', 'task.failed', 'task.cancelled', 'deployment.completed', 'org.check_failed'] as const;
export type NotificationEvent = (typeof notificationEvents)[number];

/** A subscriber as created; `destinations` says which hosts a URL may name. */
const subscriberInput = (destinations: OutboundAddressPolicy) =>
  z.object({
    url: z
      .string()
      .max(2048)
      .refine((value) => /^https?:\/\//.test(value) && URL.canParse(value), 'must be an http(s) URL')
      // A password would be kept in the URL, shown to every reader of the subscriber and sent along (stored ones
      // were removed by a migration). Subscribers authenticate Switchyard by the signature.
      .refine((value) => !URL.canParse(value) || (!new URL(value).username && !new URL(value).password), 'must not contain a user name or password')
      // A host that is an address or localhost is checked now; a name, each time a delivery resolves it.
      .superRefine((value, ctx) => {
        const refusal = URL.canParse(value) ? destinations.urlRefusal(new URL(value)) : null;
        if (refusal) ctx.addIssue({ code: 'custom', message: `must not point at internal networks: ${refusal} (see SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS)` });
      }),
    events: z.array(z.enum(notificationEvents)).max(notificationEvents.length).default([]),
  });

/**
 * What went wrong with a request, never empty: when every address of a name with IPv4 and IPv6 ones refuses
 * the connection, Node throws an AggregateError without a message of its own.
 */
function failureMessage(failure: unknown): string {
  const { message, errors, code } = failure as Partial<AggregateError> & { code?: string };
  const inner = Array.isArray(errors) ? errors.map((error: Error) => error?.message).filter(Boolean).join('; ') : '';
  return message || inner || code || 'request failed';
}

/** The events a task's final state produces. */
export function eventsForTask(task: Task): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  if (task.status === 'SUCCEEDED') events.push('task.succeeded');
  if (task.status === 'FAILED') events.push('task.failed');
  if (task.status === 'CANCELLED') events.push('task.cancelled');
  if (task.type === 'DEPLOY' || task.type === 'QUICK_DEPLOY') events.push('deployment.completed');
  if (task.type === 'ORG_CHECK' && task.status === 'FAILED') events.push('org.check_failed');
  return events;
}

/**
 * The id of the notification of one ending of a task to one subscriber: the same whoever queues it, so a second
 * queueing is the same job, and a receiver that sees it twice knows.
 */
function notificationId(task: Task, subscriberId: string, event: NotificationEvent): string {
  return uuidFromName(`${task.id}\n${task.finishedAt?.toISOString() ?? ''}\n${subscriberId}\n${event}`);
}

/** How long a process uses its list of enabled subscribers when no change announcement reaches it. */
const subscribersTtlMs = 30_000;

interface SubscriberRef {
  id: string;
  events: string[];
}

export class NotificationService {
  /**
   * The enabled subscribers, read at most once per subscribersTtlMs instead of once per finished task. A change
   * made here drops them at once; other processes drop theirs when the change is announced (control channel). A
   * missed announcement is bounded by the time limit; a removed subscriber's queued jobs are dropped at delivery.
   */
  private readonly subscribers = new ExpiringCache<'enabled', SubscriberRef[]>(
    () => this.prisma.$queryRaw<SubscriberRef[]>`SELECT "id", "events"::text[] AS "events" FROM "NotificationSubscriber" WHERE "enabled"`,
    subscribersTtlMs,
  );

  private readonly subscriberInput: ReturnType<typeof subscriberInput>;
  /** For the statement that follows every notified ending (see db/prisma.ts). */
  private readonly sql: RawStatements;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
    private readonly secretWrites: SecretWrites,
    private readonly queues: TaskQueues,
    private readonly audit: AuditService,
    /** Tells the other API replicas and workers that the subscribers changed. */
    private readonly announceChange: () => Promise<void>,
    /** Which addresses subscriber URLs may reach (SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS). */
    private readonly destinations: OutboundAddressPolicy,
    private readonly requestTimeoutMs = 10_000,
  ) {
    this.subscriberInput = subscriberInput(destinations);
    this.sql = rawStatements(prisma);
  }

  /** The subscribers changed (here or, announced, elsewhere): read them again for the next finished task. */
  forgetSubscribers(): void {
    this.subscribers.forget('enabled');
  }

  private async subscribersChanged(): Promise<void> {
    this.forgetSubscribers();
    await this.announceChange().catch(() => undefined);
  }

  async createSubscriber(actor: Principal, input: { url: string; events?: string[] | null }): Promise<{ subscriber: NotificationSubscriber; secret: string }> {
    const data = parseInput(this.subscriberInput, { url: input.url, events: input.events ?? undefined });
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    const secretRef = `notifications/${id}`;
    const subscriber = await this.secretWrites.putThen(secretRef, { secret }, () =>
      this.prisma.$transaction(async (tx) => {
        const created = await tx.notificationSubscriber.create({ data: { id, url: data.url, events: data.events, secretRef, createdBy: actorLabel(actor) } });
        await this.audit.record(tx, actor, 'notification.subscriber.create', 'NotificationSubscriber', id, { url: data.url, events: data.events });
        return created;
      }),
    );
    await this.subscribersChanged();
    return { subscriber, secret };
  }

  /** Deletes the subscriber; answers it as it was, read with `query` (the relations the caller will want of it). */
  async deleteSubscriber<T extends Omit<Prisma.NotificationSubscriberFindUniqueArgs, 'where'>>(actor: Principal, id: string, query?: T): Promise<NotificationSubscriber> {
    const subscriber = await this.prisma.notificationSubscriber.findUnique({ where: { id } });
    const notFound = () => new NotFoundError('SUBSCRIBER_NOT_FOUND', 'No notification subscriber with that id');
    if (!subscriber) throw notFound();
    // What the answer shows of it (its attempts, say), read before the deletion takes it: nothing could load it after.
    const answer = selectsAnything(query) ? await this.prisma.notificationSubscriber.findUnique({ ...(query as T), where: { id } }) : null;
    // Of concurrent deletions, only the one whose delete finds the row records it, announces it and removes the secret.
    const deletion = await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          await tx.notificationSubscriber.delete({ where: { id } });
          await this.audit.record(tx, actor, 'notification.subscriber.delete', 'NotificationSubscriber', id, { url: subscriber.url });
          return this.secretWrites.noteDeletion(tx, subscriber.secretRef);
        }),
      notFound,
    );
    await this.subscribersChanged();
    await this.secretWrites.finish(deletion);
    return (answer as NotificationSubscriber | null) ?? subscriber;
  }

  listSubscribers<T extends Omit<Prisma.NotificationSubscriberFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.notificationSubscriber.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  countSubscribers(): Promise<number> {
    return this.prisma.notificationSubscriber.count();
  }

  /** Whether a task ending now may have anyone to notify: whether any subscriber is enabled. */
  async anyoneToNotify(): Promise<boolean> {
    return (await this.subscribers.get('enabled')).length > 0;
  }

  /**
   * Queues the notifications a finished task produces, then clears its notificationsPending. Safe to call again
   * for the same ending (the reconciler does, for tasks whose settler could not): each notification's id, which
   * is also its job's, is derived from the ending, so BullMQ takes it once while it keeps the job.
   */
  async taskFinished(task: Task): Promise<void> {
    await this.queueEndings([task]);
  }

  /**
   * Queues the notifications of tasks that ended before `endedBefore` and still have them pending: their settler
   * could not queue them (Redis unavailable) or died first. Oldest first, `batch` at a time until none are left;
   * answers how many tasks. Every worker's reconciler runs this: two at once queue the same jobs (ids derived from
   * the endings), which BullMQ takes once.
   */
  async sendMissed(endedBefore: Date, batch = 200): Promise<number> {
    let sent = 0;
    // Bounded, should a flag somehow not clear: the next pass goes on.
    for (let round = 0; round < 50; round += 1) {
      const tasks = await this.prisma.task.findMany({ where: { notificationsPending: true, finishedAt: { lt: endedBefore } }, orderBy: { finishedAt: 'asc' }, take: batch });
      await this.queueEndings(tasks);
      sent += tasks.length;
      if (tasks.length < batch) break;
    }
    return sent;
  }

  /** Queues the endings' notifications in one Redis round trip, then clears their flags in one statement. */
  private async queueEndings(tasks: Task[]): Promise<void> {
    if (tasks.length === 0) return;
    const deliveries = await Promise.all(tasks.map((task) => this.deliveriesFor(task)));
    await this.queues.notify(deliveries.flat());
    // Only these endings: a task retried (and perhaps ended again) since has other notifications.
    await this.sql(Prisma.sql`
      UPDATE "Task" t SET "notificationsPending" = false
      FROM unnest(${tasks.map((task) => task.id)}::uuid[], ${tasks.map((task) => task.status)}::text[], ${tasks.map((task) => task.finishedAt?.toISOString() ?? null)}::timestamp(3)[])
        AS ended(id, status, "finishedAt")
      WHERE t."id" = ended.id AND t."notificationsPending" AND t."status"::text = ended.status
        AND t."finishedAt" IS NOT DISTINCT FROM ended."finishedAt"`);
  }

  /** One job per subscriber and event the ending produces. */
  private async deliveriesFor(task: Task): Promise<NotificationJobData[]> {
    const events = eventsForTask(task);
    if (events.length === 0) return [];
    const subscribers = await this.subscribers.get('enabled');
    const summary = {
      id: task.id,
      type: task.type,
      status: task.status,
      org: task.orgAlias,
      queue: task.queue,
      source: task.source,
      attempts: task.attempts,
      error: task.errorCode ? { code: task.errorCode, message: task.errorMessage } : null,
      finishedAt: task.finishedAt?.toISOString() ?? null,
    };
    return subscribers.flatMap((subscriber) =>
      events
        .filter((event) => subscriber.events.length === 0 || subscriber.events.includes(event))
        .map((event) => ({ subscriberId: subscriber.id, notificationId: notificationId(task, subscriber.id, event), event, payload: { event, sentFor: task.id, task: summary } })),
    );
  }

  /** Deletes the record of delivery attempts made before `cutoff`; returns how many. */
  pruneAttempts(cutoff: Date, batch = 1000): Promise<number> {
    return pruneRows(this.prisma, 'NotificationAttempt', cutoff, batch);
  }

  /** One delivery attempt (run by a worker); throws so BullMQ retries with backoff. */
  async deliver(job: NotificationJobData, attempt: number): Promise<void> {
    const subscriber = await this.prisma.notificationSubscriber.findUnique({ where: { id: job.subscriberId } });
    if (!subscriber || !subscriber.enabled) return; // removed or disabled since: drop it
    const started = Date.now();
    const record = (status: number | null, error: string | null) =>
      this.prisma.notificationAttempt.create({
        data: { subscriberId: subscriber.id, notificationId: job.notificationId, event: job.event, attempt, ok: error === null, responseStatus: status, error, durationMs: Date.now() - started },
      });
    const secret = (await this.secrets.get(subscriber.secretRef))?.secret;
    if (!secret) {
      // Nothing to sign with, now or on a retry: recorded where the subscriber's owner looks, and not retried.
      await record(null, 'the signing secret is missing from the secret store: delete the subscriber and create it again');
      return;
    }
    const body = JSON.stringify({ id: job.notificationId, ...job.payload });
    const { status, error } = await this.post(new URL(subscriber.url), job, signTimestamped(secret, body), body);
    await record(status, error);
    if (error !== null) throw new Error(`notification ${job.notificationId} to subscriber ${subscriber.id}: ${error}`);
  }

  /** POSTs one notification; answers the response's status, and what went wrong (null when it was a 2xx). */
  private async post(url: URL, job: NotificationJobData, signature: string, body: string): Promise<{ status: number | null; error: string | null }> {
    try {
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'Switchyard-Notifications',
        'x-switchyard-event': job.event,
        'x-switchyard-delivery': job.notificationId,
        'x-switchyard-signature': signature,
      };
      const status = await guardedPost(url, { headers, body, timeoutMs: this.requestTimeoutMs }, this.destinations);
      return { status, error: status >= 200 && status < 300 ? null : `HTTP ${status}` };
    } catch (failure) {
      const { name } = failure as Error;
      if (name === 'TimeoutError') return { status: null, error: 'timed out' };
      if (name === 'RefusedAddressError') return { status: null, error: `refused: ${(failure as Error).message} (see SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS)` };
      return { status: null, error: failureMessage(failure).slice(0, 300) };
    }
  }

  listAttempts<T extends Omit<Prisma.NotificationAttemptFindManyArgs, 'where' | 'orderBy'>>(subscriberId: string, query: T) {
    return this.prisma.notificationAttempt.findMany({ ...query, where: { subscriberId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  countAttempts(subscriberId: string): Promise<number> {
    return this.prisma.notificationAttempt.count({ where: { subscriberId } });
  }
}
