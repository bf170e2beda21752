// Applies the committed Prisma migrations (prisma/migrations/*/migration.sql) in order, recording them in
// Prisma's own `_prisma_migrations` table so `prisma migrate status` agrees. Done here rather than through
// the Prisma CLI because the CLI needs a schema engine at run time; this needs only node-postgres, takes
// milliseconds, and is safe with several replicas starting at once (an advisory lock serialises them).
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { maintenanceUrl, parseDatabaseUrl, quoteIdent } from './connection.js';

export const defaultMigrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/** Any constant works; it only has to be the same for every Switchyard process. */
const migrationLockKey = 0x5717c4;

export interface MigrationResult {
  applied: string[];
  database: string;
  schema: string;
  createdDatabase: boolean;
}

export async function migrate(databaseUrl: string, migrationsDir = defaultMigrationsDir): Promise<MigrationResult> {
  const target = parseDatabaseUrl(databaseUrl);
  const createdDatabase = await ensureDatabase(databaseUrl);
  const client = new pg.Client({ connectionString: target.connectionString });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(target.schema)}`);
    await client.query(`SET search_path TO ${quoteIdent(target.schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    const done = await client.query<{ migration_name: string; checksum: string }>(
      'SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    const appliedChecksums = new Map(done.rows.map((row) => [row.migration_name, row.checksum]));
    const applied: string[] = [];
    for (const migration of await readMigrations(migrationsDir)) {
      const previous = appliedChecksums.get(migration.name);
      if (previous !== undefined) {
        if (previous !== migration.checksum) {
          throw new Error(`Migration ${migration.name} was changed after it was applied (checksum mismatch)`);
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query(
          `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ($1, $2, now(), $3, 1)`,
          [randomUUID(), migration.checksum, migration.name],
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`Migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(migration.name);
    }
    return { applied, database: target.database, schema: target.schema, createdDatabase };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => undefined);
    await client.end();
  }
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

async function readMigrations(dir: string): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** Creates the target database when it does not exist yet. Returns whether it did. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const target = parseDatabaseUrl(databaseUrl);
  const probe = new pg.Client({ connectionString: target.connectionString });
  try {
    await probe.connect();
    return false;
  } catch (error) {
    // 3D000 invalid_catalog_name: the database does not exist. Anything else is a real connection problem.
    if ((error as { code?: string }).code !== '3D000') throw error;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const admin = new pg.Client({ connectionString: maintenanceUrl(target) });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${quoteIdent(target.database)}`);
    return true;
  } catch (error) {
    // Another process created it first. Postgres says so with 42P04 duplicate_database when that process had
    // committed before this statement began, and with 23505 unique_violation (on pg_database's name index)
    // when both were creating it at the same moment.
    const code = (error as { code?: string }).code;
    if (code === '42P04' || code === '23505') return false;
    throw error;
  } finally {
    await admin.end();
  }
}
