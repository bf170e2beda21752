// Deletes recorded webhook deliveries older than the retention (SWITCHYARD_WEBHOOK_DELIVERY_RETENTION_DAYS), in
// every API replica: when it starts listening, then hourly. Each delivery keeps its payload (up to 64 KiB), and
// senders deliver for as long as the source exists, so without it the table grows for good. Replicas pruning at
// once is harmless: each deletes what is left.
import type { Logger } from 'pino';
import type { WebhookService } from '../domain/webhooks/webhook-service.js';
import { startPeriodic } from './periodic.js';

const dayMs = 24 * 3_600_000;

export function startDeliveryPruning(webhooks: WebhookService, logger: Logger, retentionDays: number, intervalMs: number): () => Promise<void> {
  if (retentionDays <= 0) return async () => undefined; // kept for good
  return startPeriodic(
    () =>
      webhooks.pruneDeliveries(new Date(Date.now() - retentionDays * dayMs)).then(
        (deleted) => {
          if (deleted > 0) logger.info({ deleted, retentionDays }, 'deleted webhook deliveries past their retention');
        },
        (error: unknown) => logger.warn({ err: error }, 'pruning webhook deliveries failed; trying again later'),
      ),
    intervalMs,
  );
}
