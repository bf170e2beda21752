// The key under which WebSocket subscriptions share one execution (src/server/shared-subscriptions.ts). Two
// subscriptions may share when they produce the same results: same role (its scopes decide what a result may
// contain), operation and variables. Differences that cannot change a result are normalised away, so clients
// that format the same operation differently still share: ignored characters in the document (whitespace,
// commas, comments) and the order of keys in the variables. Anything else (the order of fields, which orders
// the result's keys; aliases) keeps them apart.
import { stripIgnoredCharacters } from 'graphql';
import { canonicalJson } from '../canonical-json.js';

/** The sharing key of a subscribe payload whose query has already been parsed successfully. */
export function shareKey(role: string, payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }): string {
  return JSON.stringify([role, payload.operationName ?? null, stripIgnoredCharacters(payload.query), canonicalJson(payload.variables ?? {})]);
}
