import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Prisma, PrismaClient } from '../generated/prisma/client.js';
import { parseDatabaseUrl, quoteIdent } from './connection.js';

export type { PrismaClient } from '../generated/prisma/client.js';
export { Prisma } from '../generated/prisma/client.js';

export interface PrismaOptions {
  /** Connections in this process's pool. */
  poolSize?: number;
}

/** The pg pool under each client createPrisma made (see rawStatements). */
const pools = new WeakMap<PrismaClient, pg.Pool>();

export function createPrisma(databaseUrl: string, options: PrismaOptions = {}): PrismaClient {
  const target = parseDatabaseUrl(databaseUrl);
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: options.poolSize ?? 10,
    options: `-c search_path=${quoteIdent(target.schema)}`,
  });
  // The adapter listens for idle-connection errors only once Prisma has connected; until then this does
  // (an idle connection the server dropped is simply replaced on its next use).
  pool.on('error', () => undefined);
  // The adapter ends the pool when the client disconnects, as it would the pool it made itself.
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, { schema: target.schema, disposeExternalPool: true }) });
  pools.set(prisma, pool);
  return prisma;
}

/** Runs one SQL statement (a Prisma.sql template) and returns its rows. */
export type RawStatements = <T>(statement: Prisma.Sql) => Promise<T[]>;

/**
 * How the statements on the path of every task (submit, claim, each progress report, settle; see
 * domain/tasks/task-statements.ts) reach Postgres: on the client's own connection pool, through its pg
 * driver, with the rows read as `$queryRaw` reads them. Not through `$queryRaw` itself: Prisma's raw-query
 * path (request, query compiler, interpreter, row serialisation) costs three to four times the CPU of the
 * statement's own round trip (bench/README.md), on every state change of every task. Everything else, and
 * any client that did not come from createPrisma (a transaction's, say), goes through `$queryRaw`.
 */
export function rawStatements(prisma: PrismaClient): RawStatements {
  const pool = pools.get(prisma);
  if (!pool) return (statement) => prisma.$queryRaw(statement);
  // Through Prisma's own connect: it hands the pool to the adapter, so $disconnect ends it.
  let connected: Promise<void> | null = null;
  return async <T>(statement: Prisma.Sql): Promise<T[]> => {
    await (connected ??= prisma.$connect());
    // Disconnected since: Prisma reconnects on a pool of its own, so go through it.
    if (pool.ending) return prisma.$queryRaw<T[]>(statement);
    const result = await pool.query({ text: statement.text, values: statement.values.map(asParameter), types: prismaTypes });
    return result.rows as T[];
  };
}

/**
 * Parameters as Prisma sends them. A Date is sent in UTC: node-postgres would write it in this process's
 * time zone, and a `timestamp` (without time zone) cast drops the offset.
 */
function asParameter(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

const timestampOid = 1114;

/** Columns read as `$queryRaw` reads them: `timestamp` (without time zone, Prisma's DateTime) as UTC. */
const prismaTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === timestampOid ? (text: string) => new Date(`${text.replace(' ', 'T')}Z`) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};
