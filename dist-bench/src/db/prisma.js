import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { parseDatabaseUrl, quoteIdent } from './connection.js';
export { Prisma } from '../generated/prisma/client.js';
export function createPrisma(databaseUrl, options = {}) {
    const target = parseDatabaseUrl(databaseUrl);
    const adapter = new PrismaPg({
        connectionString: target.connectionString,
        max: options.poolSize ?? 10,
        options: `-c search_path=${quoteIdent(target.schema)}`,
    }, { schema: target.schema });
    return new PrismaClient({ adapter });
}
