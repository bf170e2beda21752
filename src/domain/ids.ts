// Relay global ids are base64("Type:uuid"). Domain input may carry either form (a GraphQL client copies `id`
// fields; a CLI user pastes UUIDs), so references are normalised here without depending on GraphQL.
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The UUID behind a raw UUID or a global id of `typename`; null for anything else. */
export function rawId(value: string, typename: string): string | null {
  if (uuidPattern.test(value)) return value.toLowerCase();
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const [type, id] = decoded.split(':', 2) as [string, string | undefined];
  return type === typename && id && uuidPattern.test(id) ? id.toLowerCase() : null;
}
