// Replicas and workers migrate as they start, often at the same moment on a fresh server: the database is
// created once, each migration is applied once, and none of them fails because another got there first.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { maintenanceUrl, parseDatabaseUrl, quoteIdent } from '../src/db/connection.js';
import { defaultMigrationsDir, migrate } from '../src/db/migrate.js';
import { queryDatabase, testDatabaseUrl } from './support/harness.js';

const database = `switchyard_migrate_${randomBytes(4).toString('hex')}`;
const serverUrl = new URL(testDatabaseUrl);
serverUrl.pathname = `/${database}`;
const databaseUrl = serverUrl.toString();

afterAll(async () => {
  await queryDatabase(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`, maintenanceUrl(parseDatabaseUrl(databaseUrl)));
});

describe('migrate', { timeout: 60_000 }, () => {
  it('eight processes starting at once on a fresh server create the database once and apply each migration once', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, index) => migrate(`${databaseUrl}?schema=${index % 2 === 0 ? 'public' : 'second'}`)));
    expect(results.filter((result) => result.createdDatabase)).toHaveLength(1);

    const rows = await queryDatabase<{ schema: string; migration_name: string }>(
      `SELECT 'public' AS schema, migration_name FROM public."_prisma_migrations"
       UNION ALL SELECT 'second', migration_name FROM second."_prisma_migrations" ORDER BY 1, 2`,
      databaseUrl,
    );
    for (const schema of ['public', 'second']) {
      const applied = results.filter((_, index) => (index % 2 === 0 ? 'public' : 'second') === schema).flatMap((result) => result.applied);
      const recorded = rows.filter((row) => row.schema === schema).map((row) => row.migration_name);
      expect(recorded.length).toBeGreaterThan(0);
      expect(applied.sort()).toEqual(recorded);
    }
    // A later start finds everything in place.
    expect(await migrate(databaseUrl)).toMatchObject({ applied: [], createdDatabase: false });
  });

  it('refuses to start when an applied migration was changed afterwards', async () => {
    await migrate(databaseUrl);
    const dir = await mkdtemp(path.join(tmpdir(), 'switchyard-migrations-'));
    try {
      await cp(defaultMigrationsDir, dir, { recursive: true });
      const first = (await queryDatabase<{ migration_name: string }>('SELECT min(migration_name) AS migration_name FROM public."_prisma_migrations"', databaseUrl))[0]!.migration_name;
      await writeFile(path.join(dir, first, 'migration.sql'), '-- edited after it was applied\n', { flag: 'a' });
      await expect(migrate(databaseUrl, dir)).rejects.toThrow(`Migration ${first} was changed after it was applied (checksum mismatch)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
