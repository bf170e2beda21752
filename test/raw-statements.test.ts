// rawStatements (src/db/prisma.ts): the task statements run on the Prisma client's pg pool, not through
// $queryRaw, and must read and write exactly what $queryRaw does, in any time zone of the process.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { createPrisma, Prisma, rawStatements, type PrismaClient } from '../src/db/prisma.js';
import { dropSchema, testDatabaseUrl } from './support/harness.js';

const schema = `t_raw_statements_${randomBytes(4).toString('hex')}`;
const databaseUrl = `${testDatabaseUrl}?schema=${schema}`;
let prisma: PrismaClient;
const zone = process.env.TZ;

beforeAll(async () => {
  await migrate(databaseUrl);
  prisma = createPrisma(databaseUrl, { poolSize: 2 });
});
afterAll(async () => {
  await prisma?.$disconnect();
  await dropSchema(schema);
});
afterEach(() => {
  if (zone === undefined) delete process.env.TZ;
  else process.env.TZ = zone;
});

async function newOrg(alias: string): Promise<string> {
  const org = await prisma.org.create({ data: { alias, kind: 'SANDBOX', instanceUrl: 'https://acme--dev.sandbox.my.salesforce.com', secretRef: `ref-${alias}` } });
  return org.id;
}

/** A task row written with a timestamp parameter, returned with every kind of column the task statements return. */
function insertTask(orgId: string, runAt: Date): Prisma.Sql {
  return Prisma.sql`
    WITH t AS (
      INSERT INTO "Task" ("id", "type", "status", "queue", "priority", "maxAttempts", "input", "source", "requestedBy", "orgId", "orgAlias", "runAt", "updatedAt")
      VALUES (gen_random_uuid(), 'DIAGNOSTIC', 'SCHEDULED', 'NORMAL', 40, 3, ${JSON.stringify({ steps: 2, nested: { list: [1, 'two', null] } })}::jsonb,
              'API', 'tester', ${orgId}::uuid, 'raw', ${runAt}::timestamp(3), ${runAt}::timestamp(3))
      RETURNING *
    )
    SELECT t.*, CASE WHEN o."id" IS NULL THEN NULL ELSE json_build_object('id', o."id", 'alias', o."alias") END AS "org",
           ARRAY['a', 'b']::text[] AS "labels", NULL::text AS "nothing", true AS "flag"
    FROM t LEFT JOIN "Org" o ON o."id" = t."orgId"`;
}

describe('rawStatements', () => {
  it.each(['UTC', 'America/New_York', 'Asia/Kolkata'])('writes and reads rows as $queryRaw does, with the process in %s', async (timeZone) => {
    process.env.TZ = timeZone;
    const alias = `raw-${timeZone.replace('/', '-').toLowerCase()}`;
    const orgId = await newOrg(alias);
    const runAt = new Date('2027-03-14T01:59:26.535Z');
    const [direct] = await rawStatements(prisma)<Record<string, unknown>>(insertTask(orgId, runAt));
    const [viaPrisma] = await prisma.$queryRaw<Array<Record<string, unknown>>>(insertTask(orgId, runAt));
    expect(direct).toBeDefined();
    // Same columns, same JS types and values (ids and createdAt differ by row).
    const comparable = (row: Record<string, unknown>) => ({ ...row, id: typeof row.id, createdAt: row.createdAt instanceof Date });
    expect(comparable(direct!)).toEqual(comparable(viaPrisma!));
    expect(direct!.runAt).toEqual(runAt);
    expect(direct!.input).toEqual({ steps: 2, nested: { list: [1, 'two', null] } });
    expect(direct!.org).toEqual({ id: orgId, alias });
    expect(direct!.labels).toEqual(['a', 'b']);
    // What the ORM reads back is the instant that was written, whatever the process's zone.
    const stored = await prisma.task.findUniqueOrThrow({ where: { id: direct!.id as string } });
    expect(stored.runAt).toEqual(runAt);
    expect(stored.updatedAt).toEqual(runAt);
    const stamps = await prisma.$queryRaw<Array<{ text: string }>>`SELECT "runAt"::text AS text FROM "Task" WHERE "id" = ${direct!.id as string}::uuid`;
    expect(stamps).toEqual([{ text: '2027-03-14 01:59:26.535' }]);
  });

  it('reports a failed statement and leaves nothing of it behind', async () => {
    const before = await prisma.task.count();
    await expect(rawStatements(prisma)(insertTask('00000000-0000-4000-8000-000000000000', new Date()))).rejects.toThrow(/foreign key/);
    expect(await prisma.task.count()).toBe(before);
  });

  it('still works after the client disconnected (Prisma connects again on a pool of its own)', async () => {
    const client = createPrisma(databaseUrl, { poolSize: 1 });
    const sql = rawStatements(client);
    try {
      expect(await sql<{ n: number }>(Prisma.sql`SELECT ${7}::int AS n`)).toEqual([{ n: 7 }]);
      await client.$disconnect();
      expect(await sql<{ n: number }>(Prisma.sql`SELECT ${8}::int AS n`)).toEqual([{ n: 8 }]);
    } finally {
      await client.$disconnect();
    }
  });

  it('prepares each statement once per connection, and prepares again when a migration changed its columns', async () => {
    const client = createPrisma(databaseUrl, { poolSize: 1 }); // one connection: every statement below shares it
    const sql = rawStatements(client);
    const table = `wide_${randomBytes(3).toString('hex')}`;
    try {
      await sql(Prisma.sql`CREATE TABLE ${Prisma.raw(`"${table}"`)} ("id" int PRIMARY KEY, "a" text)`);
      await sql(Prisma.sql`INSERT INTO ${Prisma.raw(`"${table}"`)} VALUES (${1}::int, ${'one'}::text)`);
      const select = () => sql<Record<string, unknown>>(Prisma.sql`SELECT * FROM ${Prisma.raw(`"${table}"`)} WHERE "id" = ${1}::int`);
      expect(await select()).toEqual([{ id: 1, a: 'one' }]);
      expect(await select()).toEqual([{ id: 1, a: 'one' }]);
      const prepared = await sql<{ name: string; statement: string }>(Prisma.sql`SELECT "name", "statement" FROM pg_prepared_statements`);
      expect(prepared.filter((row) => row.statement.includes(`SELECT * FROM "${table}"`))).toHaveLength(1);

      // Another replica's migration adds a column: Postgres refuses the prepared SELECT * ("cached plan must
      // not change result type"); the statement is prepared again and answers with the new column.
      await prisma.$executeRawUnsafe(`ALTER TABLE "${table}" ADD COLUMN "b" int NOT NULL DEFAULT 2`);
      expect(await select()).toEqual([{ id: 1, a: 'one', b: 2 }]);
      expect(await select()).toEqual([{ id: 1, a: 'one', b: 2 }]);
    } finally {
      await prisma.$executeRawUnsafe(`DROP TABLE IF EXISTS "${table}"`);
      await client.$disconnect();
    }
  });
});
