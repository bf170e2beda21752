export function parseDatabaseUrl(databaseUrl) {
    const url = new URL(databaseUrl);
    const schema = url.searchParams.get('schema') ?? 'public';
    url.searchParams.delete('schema');
    const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
    return { connectionString: url.toString(), database, schema };
}
/** The same server, but the maintenance database, to create the target database from. */
export function maintenanceUrl(target) {
    const url = new URL(target.connectionString);
    url.pathname = '/postgres';
    return url.toString();
}
export function quoteIdent(name) {
    return `"${name.replaceAll('"', '""')}"`;
}
