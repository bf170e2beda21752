// Relay global ids are base64("Type:uuid"). Domain input may carry either form (a GraphQL client copies `id`
// fields; a CLI user pastes UUIDs), so references are normalised here without depending on GraphQL.
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const typenamePattern = /^[A-Za-z_]\w*$/;

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
