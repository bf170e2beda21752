// Searching what Switchyard wrote or sent for credentials it must never reveal: canary values that are easy to
// find, and every encoding a leaked value could hide in.
import { randomBytes } from 'node:crypto';

/** A random canary value. Alphanumeric, so no escaping (JSON, URL, form encoding, shell) can hide it from a plain search. */
export const canary = (label: string) => `${label}${randomBytes(20).toString('hex')}Z`;

/**
 * Every form a leaked value is searched in: plain, hex (lower and upper case), and base64/base64url at the
 * three byte alignments; with `uriComponent`, also percent-encoded (encodeURIComponent).
 */
export function encodings(value: string, options: { uriComponent?: boolean } = {}): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const forms = new Set<string>([value, bytes.toString('hex'), bytes.toString('hex').toUpperCase()]);
  if (options.uriComponent) forms.add(encodeURIComponent(value));
  for (let shift = 0; shift < 3; shift += 1) {
    const encoded = Buffer.concat([Buffer.alloc(shift, 0x20), bytes]).toString('base64');
    // Only the 4-character groups made of the value's bytes alone are the same wherever it sits.
    const inner = encoded.slice(shift === 0 ? 0 : 4, Math.floor((shift + bytes.length) / 3) * 4);
    forms.add(inner);
    forms.add(inner.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...forms];
}
