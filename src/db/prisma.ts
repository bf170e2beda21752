import { createHash } from 'node:crypto';
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
  runners.set(prisma, createRunner(prisma, pool));
  return prisma;
}

/**
 * Whether a caller's query shape (a GraphQL selection turned into Prisma's select/include) asks for anything: an
 * empty `select` is an error to Prisma, and a row read with it would be read for nothing.
 */
export function selectsAnything(query: { select?: object | null; include?: object | null } | undefined): boolean {
  if (!query) return false;
  return Object.keys(query.select ?? {}).length > 0 || Object.keys(query.include ?? {}).length > 0;
}

/**
 * Whether a statement failed on this Postgres constraint: a raw one on the pg pool (pg's DatabaseError names it)
 * or through Prisma's $queryRaw (P2010, with Postgres's message), or a model query's foreign key (P2003, the
 * constraint in its meta).
 */
export function violatesConstraint(error: unknown, constraint: string): boolean {
  if (error instanceof pg.DatabaseError) return error.constraint === constraint;
  return (
    error instanceof Prisma.PrismaClientKnownRequestError &&
    (error.code === 'P2010' || error.code === 'P2003') &&
    `${error.message} ${JSON.stringify(error.meta ?? {})}`.includes(`"${constraint}"`)
  );
}

/** Runs one SQL statement (a Prisma.sql template) and returns its rows. */
export type RawStatements = <T>(statement: Prisma.Sql) => Promise<T[]>;

/**
 * How the statements on the path of every task (submit, claim, each progress report, settle; see
 * domain/tasks/task-statements.ts) reach Postgres: on the client's own connection pool, through its pg
 * driver, with the rows read as `$queryRaw` reads them. Not through `$queryRaw` itself: Prisma's raw-query
 * path (request, query compiler, interpreter, row serialisation) costs three to four times the CPU of the
 * statement's own round trip (bench/README.md), on every state change of every task. They run as named
 * (prepared) statements. Everything else, and any client that did not come from createPrisma (a
 * transaction's, say), goes through `$queryRaw`. One runner per client, shared by every caller.
 */
export function rawStatements(prisma: PrismaClient): RawStatements {
  return runners.get(prisma) ?? ((statement) => prisma.$queryRaw(statement));
}

/** The runner of each client createPrisma made, on its pool. It does nothing until its first statement. */
const runners = new WeakMap<PrismaClient, RawStatements>();

function createRunner(prisma: PrismaClient, pool: pg.Pool): RawStatements {
  const names = new StatementNames();
  // Through Prisma's own connect: it hands the pool to the adapter, so $disconnect ends it.
  let connected: Promise<void> | null = null;
  const run = (statement: Prisma.Sql) =>
    pool.query({ name: names.of(statement.text), text: statement.text, values: statement.values.map(asParameter), types: prismaTypes });
  return async <T>(statement: Prisma.Sql): Promise<T[]> => {
    // A failed connect is not kept: the next statement tries again.
    await (connected ??= prisma.$connect().catch((error: unknown) => {
      connected = null;
      throw error;
    }));
    // Disconnected since: Prisma reconnects on a pool of its own, so go through it.
    if (pool.ending) return prisma.$queryRaw<T[]>(statement);
    const result = await run(statement).catch((error: unknown) => {
      if (!isStalePlan(error)) throw error;
      // A migration changed a table a prepared statement returns every column of (another replica's
      // rolling upgrade, say): prepare every statement again, under new names.
      names.renew();
      return run(statement);
    });
    return result.rows as T[];
  };
}

/**
 * Names for the statements, so each connection prepares (parses and plans) a statement once and then only
 * binds and executes it: about half of what the server spends on each. Their texts are few (one per shape of
 * change); past `limit` distinct texts, the rest run unnamed rather than fill every connection's memory.
 */
class StatementNames {
  private readonly names = new Map<string, string>();
  private generation = 0;

  constructor(private readonly limit = 200) {}

  of(text: string): string | undefined {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < this.limit) {
      name = `sy${this.generation}_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      this.names.set(text, name);
    }
    return name;
  }

  renew(): void {
    this.names.clear();
    this.generation += 1;
  }
}

/** Postgres refuses a prepared `SELECT *`/`RETURNING *` whose table gained or lost a column since. */
function isStalePlan(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === '0A000' && typeof message === 'string' && message.includes('cached plan must not change result type');
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
