// The key under which WebSocket subscriptions share one execution (src/server/shared-subscriptions.ts). Two
// subscriptions may share when they produce the same results: same role (its scopes decide what a result may
// contain), operation and variables. Differences that cannot change a result are normalised away, so clients
// that format the same operation differently still share: ignored characters in the document (whitespace,
// commas, comments) and the order of keys in the variables. Anything else (the order of fields, which orders
// the result's keys; aliases) keeps them apart.
import { stripIgnoredCharacters } from 'graphql';

/** JSON with object keys sorted at every level (arrays keep their order). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The sharing key of a subscribe payload whose query has already been parsed successfully. */
export function shareKey(role: string, payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }): string {
  return JSON.stringify([role, payload.operationName ?? null, stripIgnoredCharacters(payload.query), canonicalJson(payload.variables ?? {})]);
}
