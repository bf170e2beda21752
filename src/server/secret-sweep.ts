// Runs the sweep of pending secrets (domain/secret-writes.ts) in every API replica: when it starts listening,
// then every few minutes. The API rather than the workers: only the API may delete credentials (the workers'
// Vault policy reads them wrapped). Replicas sweeping at once is harmless: deleting what another replica just
// deleted is a no-op in both stores.
import type { Logger } from 'pino';
import type { SecretWrites } from '../domain/secret-writes.js';
import { startPeriodic } from './periodic.js';

export function startSecretSweep(secretWrites: SecretWrites, logger: Logger, intervalMs: number): () => Promise<void> {
  return startPeriodic(
    () =>
      secretWrites.sweep().then(
        (report) => {
          if (report.deleted.length > 0) logger.warn({ deleted: report.deleted }, 'deleted secrets that an interrupted write or deletion left without a row');
          if (report.failed.length > 0) logger.warn({ failed: report.failed }, 'the secret store did not delete secrets that no row names; trying again later');
        },
        (error: unknown) => logger.warn({ err: error }, 'sweeping pending secrets failed; trying again later'),
      ),
    intervalMs,
  );
}
