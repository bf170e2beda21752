// Deletes recorded webhook deliveries, and the records of outbound notification attempts, older than the retention
// (SWITCHYARD_WEBHOOK_DELIVERY_RETENTION_DAYS), in every API replica: when it starts listening, then hourly. Each
// delivery keeps its payload (up to 64 KiB), and every finished task adds attempts per subscriber, for as long as
// sources and subscribers exist: without it the tables grow for good. Replicas pruning at once is harmless: each
// deletes what is left.
import type { Logger } from 'pino';
import type { NotificationService } from '../domain/notifications/notification-service.js';
import type { WebhookService } from '../domain/webhooks/webhook-service.js';
import { startPeriodic } from './periodic.js';

const dayMs = 24 * 3_600_000;

export function startDeliveryPruning(
  services: { webhooks: WebhookService; notifications: NotificationService },
  logger: Logger,
  retentionDays: number,
  intervalMs: number,
): () => Promise<void> {
  if (retentionDays <= 0) return async () => undefined; // kept for good
  return startPeriodic(async () => {
    const cutoff = new Date(Date.now() - retentionDays * dayMs);
    try {
      const deliveries = await services.webhooks.pruneDeliveries(cutoff);
      const attempts = await services.notifications.pruneAttempts(cutoff);
      if (deliveries + attempts > 0) logger.info({ deliveries, notificationAttempts: attempts, retentionDays }, 'deleted webhook deliveries and notification attempts past their retention');
    } catch (error) {
      logger.warn({ err: error }, 'pruning webhook deliveries and notification attempts failed; trying again later');
    }
  }, intervalMs);
}
