// The domain services of one Switchyard process, built once and shared by HTTP, WebSocket and CLI callers.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PrismaClient } from './db/prisma.js';
import { ArtifactService } from './domain/artifacts/artifact-service.js';
import { AuditService } from './domain/audit/audit-service.js';
import { TokenService } from './domain/auth/token-service.js';
import { OrgService } from './domain/orgs/org-service.js';
import { ResourceService } from './domain/resources/resource-service.js';
import { ScheduleService } from './domain/tasks/schedule-service.js';
import { TaskJournal } from './domain/tasks/task-journal.js';
import { TaskService } from './domain/tasks/task-service.js';
import { WebhookService } from './domain/webhooks/webhook-service.js';
import { NotificationService } from './domain/notifications/notification-service.js';
import { SecretWrites } from './domain/secret-writes.js';
import type { RedisTaskEventPublisher } from './events/task-event-bus.js';
import { addressRanges } from './net/address-ranges.js';
import { OutboundAddressPolicy } from './net/outbound-address-policy.js';
import type { TaskQueues } from './queues/task-queues.js';
import type { SecretStore } from './secrets/secret-store.js';

export interface Services {
  prisma: PrismaClient;
  secrets: SecretStore;
  /** Writes and deletes secrets with the rows that name them; its sweep finishes what a crash left (API). */
  secretWrites: SecretWrites;
  queues: TaskQueues;
  journal: TaskJournal;
  audit: AuditService;
  tokens: TokenService;
  orgs: OrgService;
  tasks: TaskService;
  schedules: ScheduleService;
  resources: ResourceService;
  artifacts: ArtifactService;
  webhooks: WebhookService;
  notifications: NotificationService;
}

export interface ServiceDeps {
  prisma: PrismaClient;
  secrets: SecretStore;
  queues: TaskQueues;
  publisher: RedisTaskEventPublisher;
  /** Command connection and key prefix, for the resource view's heartbeat keys. */
  redis: Redis;
  prefix: string;
  artifactDir: string;
  maxUploadBytes: number;
  /** Queue an ORG_CHECK whenever credentials are registered or rotated. */
  checkOrgsOnRegister: boolean;
  /** How much of a webhook payload the delivery log keeps. */
  webhookStoredPayloadBytes: number;
  /** Shortest time allowed between two firings of a schedule. */
  scheduleMinIntervalSeconds: number;
  /** Internal addresses and ranges notification subscribers may be at all the same (net/outbound-address-policy.ts). */
  notificationAllowedNetworks: string[];
  /** For what no caller hears of: notifications of a finished task that could not be queued. */
  logger: Logger;
}

export function createServices(deps: ServiceDeps): Services {
  const audit = new AuditService(deps.prisma);
  // The journal announces finished tasks to the notification service, which needs the journal's queues: tie the knot.
  let notifications: NotificationService | null = null;
  const journal = new TaskJournal(deps.prisma, deps.publisher, {
    anyoneToNotify: async () => notifications?.anyoneToNotify() ?? false,
    taskFinished: async (task) =>
      notifications?.taskFinished(task).catch((error: unknown) => {
        // The task stays marked as not notified: a worker's reconciler queues them (sendMissed).
        deps.logger.warn({ err: error, taskId: task.id, status: task.status }, 'the notifications of a finished task could not be queued now: a worker queues them later');
      }),
  });
  const artifacts = new ArtifactService(deps.prisma, deps.artifactDir, deps.maxUploadBytes);
  const tasks = new TaskService(deps.prisma, deps.queues, journal, (taskId) => deps.publisher.control({ type: 'cancel', taskId }));
  const secretWrites = new SecretWrites(deps.prisma, deps.secrets);
  return {
    prisma: deps.prisma,
    secrets: deps.secrets,
    secretWrites,
    queues: deps.queues,
    journal,
    audit,
    tokens: new TokenService(deps.prisma, audit, (tokenId) => deps.publisher.control({ type: 'token-revoked', tokenId })),
    orgs: new OrgService(
      deps.prisma,
      deps.secrets,
      secretWrites,
      audit,
      deps.checkOrgsOnRegister
        ? {
            queue: (actor, org) => tasks.submit(actor, { type: 'ORG_CHECK', org: org.alias, queue: 'CRITICAL' }),
            discard: (actor, taskId) => tasks.cancel(actor, taskId),
          }
        : null,
    ),
    tasks,
    schedules: new ScheduleService(deps.prisma, deps.queues, tasks, deps.scheduleMinIntervalSeconds, audit),
    resources: new ResourceService(deps.queues, deps.redis, deps.prefix),
    artifacts,
    webhooks: new WebhookService(deps.prisma, deps.secrets, secretWrites, audit, tasks, journal, deps.webhookStoredPayloadBytes, (sourceId) =>
      deps.publisher.control({ type: 'webhook-source-changed', sourceId }),
    ),
    notifications: (notifications = new NotificationService(
      deps.prisma,
      deps.secrets,
      secretWrites,
      deps.queues,
      audit,
      () => deps.publisher.control({ type: 'notification-subscribers-changed' }),
      new OutboundAddressPolicy(addressRanges(deps.notificationAllowedNetworks)),
    )),
  };
}
