import type { Logger } from 'pino';
import { migrate } from '../db/migrate.js';
import type { Env } from '../env.js';

/** Applies pending migrations (creating the database if needed) and logs what it did. */
export async function runMigrations(env: Env, logger: Logger): Promise<void> {
  const result = await migrate(env.DATABASE_URL);
  if (result.createdDatabase) logger.info({ database: result.database }, 'created database');
  logger.info({ applied: result.applied, schema: result.schema }, result.applied.length ? 'applied migrations' : 'database schema is up to date');
}
