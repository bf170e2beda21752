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

  it('takes user names and passwords out of notification subscriber URLs stored before they were refused', async () => {
    const schema = 'legacy';
    const dir = await mkdtemp(path.join(tmpdir(), 'switchyard-migrations-'));
    const migration = '20261129040000_notification_url_credentials';
    try {
      // The database as the release before this migration left it, with such subscribers in it.
      await cp(defaultMigrationsDir, dir, { recursive: true });
      await rm(path.join(dir, migration), { recursive: true });
      await migrate(`${databaseUrl}?schema=${schema}`, dir);
      const urls = {
        plain: 'https://old-user:old-password-7f3@hooks.example.com/legacy?x=1',
        at: 'https://ops@corp:old-password-9a1@hooks.example.com/legacy2',
        clean: 'https://hooks.example.com/clean',
      };
      const ids = Object.fromEntries(
        await Promise.all(
          Object.entries(urls).map(async ([name, url]) => {
            const [row] = await queryDatabase<{ id: string }>(
              `INSERT INTO ${schema}."NotificationSubscriber" (id, url, events, "secretRef", "createdBy") VALUES (gen_random_uuid(), $1, '{}', $2, 'cli') RETURNING id`,
              databaseUrl,
              [url, `notifications/${name}`],
            );
            const fetchError = `Request cannot be constructed from a URL that includes credentials: ${url}`;
            await queryDatabase(
              `INSERT INTO ${schema}."NotificationAttempt" (id, "subscriberId", "notificationId", event, attempt, ok, error, "durationMs") VALUES (gen_random_uuid(), $1, 'n1', 'task.failed', 1, false, $2, 3)`,
              databaseUrl,
              [row!.id, fetchError],
            );
            for (const action of ['notification.subscriber.create', 'notification.subscriber.delete', 'webhook.source.create']) {
              await queryDatabase(
                `INSERT INTO ${schema}."AuditEntry" (id, actor, action, "targetType", "targetId", details) VALUES (gen_random_uuid(), 'cli', $1, 'NotificationSubscriber', $2, $3)`,
                databaseUrl,
                [action, row!.id, JSON.stringify({ url, events: ['task.failed'] })],
              );
            }
            return [name, row!.id];
          }),
        ),
      );

      expect((await migrate(`${databaseUrl}?schema=${schema}`)).applied).toEqual([migration]);
      const subscribers = await queryDatabase<{ id: string; url: string; enabled: boolean }>(`SELECT id, url, enabled FROM ${schema}."NotificationSubscriber"`, databaseUrl);
      const byName = (name: string) => subscribers.find((s) => s.id === ids[name]);
      // Stripped and disabled: they were never notified (fetch refused their URLs) and stay silent.
      expect(byName('plain')).toMatchObject({ url: 'https://hooks.example.com/legacy?x=1', enabled: false });
      expect(byName('at')).toMatchObject({ url: 'https://hooks.example.com/legacy2', enabled: false });
      expect(byName('clean')).toMatchObject({ url: urls.clean, enabled: true });
      const attempts = await queryDatabase<{ subscriberId: string; error: string }>(`SELECT "subscriberId", error FROM ${schema}."NotificationAttempt"`, databaseUrl);
      expect(Object.fromEntries(attempts.map((a) => [a.subscriberId, a.error]))).toEqual({
        [ids.plain!]: 'Request cannot be constructed from a URL that includes credentials: https://…@hooks.example.com/legacy?x=1',
        [ids.at!]: 'Request cannot be constructed from a URL that includes credentials: https://…@hooks.example.com/legacy2',
        [ids.clean!]: `Request cannot be constructed from a URL that includes credentials: ${urls.clean}`,
      });
      const audit = await queryDatabase<{ action: string; targetId: string; details: { url: string; events: string[] } }>(
        `SELECT action, "targetId", details FROM ${schema}."AuditEntry"`,
        databaseUrl,
      );
      for (const entry of audit) {
        const name = Object.keys(ids).find((key) => ids[key] === entry.targetId)!;
        const original = urls[name as keyof typeof urls];
        const expected = entry.action.startsWith('notification.subscriber.') ? original.replace(/\/\/[^/?#\s]*@/, '//…@') : original;
        expect(entry.details, `${entry.action} of ${name}`).toEqual({ url: expected, events: ['task.failed'] });
      }
      expect(audit).toHaveLength(9);
      expect(JSON.stringify([subscribers, attempts, audit.filter((e) => e.action !== 'webhook.source.create')])).not.toMatch(/old-password|old-user|ops@corp/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
