import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { parseDatabaseUrl, quoteIdent } from './connection.js';

export type { PrismaClient } from '../generated/prisma/client.js';
export { Prisma } from '../generated/prisma/client.js';

export interface PrismaOptions {
  /** Connections in this process's pool. */
  poolSize?: number;
}

export function createPrisma(databaseUrl: string, options: PrismaOptions = {}): PrismaClient {
  const target = parseDatabaseUrl(databaseUrl);
  const adapter = new PrismaPg(
    {
      connectionString: target.connectionString,
      max: options.poolSize ?? 10,
      options: `-c search_path=${quoteIdent(target.schema)}`,
    },
    { schema: target.schema },
  );
  return new PrismaClient({ adapter });
}
