// What Postgres can store as text or jsonb: no U+0000, and no lone UTF-16 surrogate (which is not text at all
// and cannot be encoded as UTF-8). Input a person typed is refused when it has either (server/storable-strings.ts);
// payloads Switchyard only records (webhook deliveries) are made storable instead.

/** Matches a character Postgres cannot store in text or jsonb. */
export const unstorableCharacter = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const unstorableCharacters = new RegExp(unstorableCharacter.source, 'g');

/**
 * A JSON value whose strings (keys too) have each such character replaced by U+FFFD: the value itself when it
 * has none, so a caller can tell whether anything was replaced.
 */
export function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return unstorableCharacter.test(value) ? value.replace(unstorableCharacters, '\uFFFD') : value;
  if (Array.isArray(value)) {
    const items = value.map(storableJson);
    return items.some((item, index) => item !== value[index]) ? items : value;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    const replaced = entries.map(([key, item]) => [storableJson(key) as string, storableJson(item)] as const);
    return replaced.some(([key, item], index) => key !== entries[index]![0] || item !== entries[index]![1]) ? Object.fromEntries(replaced) : value;
  }
  return value;
}
