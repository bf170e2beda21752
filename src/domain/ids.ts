// Relay global ids are base64("Type:uuid"). Domain input may carry either form (a GraphQL client copies `id`
// fields; a CLI user pastes UUIDs), so references are normalised here without depending on GraphQL.
import { createHash } from 'node:crypto';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const typenamePattern = /^[A-Za-z_]\w*$/;

/** Whether the value is a UUID (any case), the form of every row id. */
export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

/** The UUID behind a raw UUID or a global id of `typename`; null for anything else. */
export function rawId(value: string, typename: string): string | null {
  if (uuidPattern.test(value)) return value.toLowerCase();
  const parsed = parseGlobalId(value);
  return parsed?.typename === typename ? parsed.id : null;
}

/** The type name and UUID of a global id; null unless it is base64("Type:uuid"). Every node id is a UUID. */
export function parseGlobalId(value: string): { typename: string; id: string } | null {
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const typename = decoded.slice(0, Math.max(colon, 0));
  const id = decoded.slice(colon + 1);
  return typenamePattern.test(typename) && uuidPattern.test(id) ? { typename, id: id.toLowerCase() } : null;
}

/**
 * The same UUID for the same name, and a different one for any other (SHA-256 based: version 8 of RFC 9562, as
 * version 5 is SHA-1 based). For ids that must come out the same when the work that makes them is done again.
 */
export function uuidFromName(name: string): string {
  const bytes = createHash('sha256').update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
