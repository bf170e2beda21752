import { migrate } from '../db/migrate.js';
/** Applies pending migrations (creating the database if needed) and logs what it did. */
export async function runMigrations(env, logger) {
    const result = await migrate(env.DATABASE_URL);
    if (result.createdDatabase)
        logger.info({ database: result.database }, 'created database');
    logger.info({ applied: result.applied, schema: result.schema }, result.applied.length ? 'applied migrations' : 'database schema is up to date');
}
