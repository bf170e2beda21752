// DATABASE_URL follows Prisma's convention: an optional `?schema=` names the Postgres schema. node-postgres
// does not know that parameter, so it is split off here and applied as the session's search_path.
export interface DatabaseTarget {
  /** Connection string without the `schema` parameter. */
  connectionString: string;
  database: string;
  schema: string;
}

export function parseDatabaseUrl(databaseUrl: string): DatabaseTarget {
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? 'public';
  url.searchParams.delete('schema');
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
  return { connectionString: url.toString(), database, schema };
}

/** The same server, but the maintenance database, to create the target database from. */
export function maintenanceUrl(target: DatabaseTarget): string {
  const url = new URL(target.connectionString);
  url.pathname = '/postgres';
  return url.toString();
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
