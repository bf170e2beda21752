// Signature checks on the raw request body, before anything is parsed or stored. Every comparison is
// constant-time. Formats:
// - GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)> (GitHub's "Validating webhook deliveries").
// - GitLab: X-Gitlab-Token: <the secret> (GitLab's "Webhooks: secret token").
// - Salesforce relays and CI callbacks: X-Switchyard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//   "<t>.<body>")>; a timestamp more than 5 minutes old, or more than 30 s ahead, is refused (replays).
// A source has one secret, and for a while after a rotation with an overlap two (acceptedSecrets in
// domain/webhooks/webhook-source-cache.ts): a delivery signed with either is accepted.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const replayWindowSeconds = 300;
export const futureSkewSeconds = 30;

function safeEqual(a: string, b: string): boolean {
  // Hashing first gives equal lengths, so the comparison time says nothing about the expected value.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function hmacHex(secret: string, data: Buffer | string): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

export function verifyGitHub(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  return safeEqual(header, `sha256=${hmacHex(secret, body)}`);
}

export function verifyGitLab(secret: string, header: string | undefined): boolean {
  return header !== undefined && safeEqual(header, secret);
}

export type TimestampedVerdict = { ok: true; timestamp: number; signature: string } | { ok: false; reason: 'MISSING_SIGNATURE' | 'BAD_SIGNATURE' | 'STALE_TIMESTAMP' };

export function signTimestamped(secret: string, body: Buffer | string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${hmacHex(secret, Buffer.concat([Buffer.from(`${timestamp}.`), Buffer.isBuffer(body) ? body : Buffer.from(body)]))}`;
}

export function verifyTimestamped(secret: string, body: Buffer, header: string | undefined, now = Date.now()): TimestampedVerdict {
  const match = header ? /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header.trim()) : null;
  if (!match) return { ok: false, reason: 'MISSING_SIGNATURE' };
  const timestamp = Number(match[1]);
  const expected = hmacHex(secret, Buffer.concat([Buffer.from(`${timestamp}.`), body]));
  if (!safeEqual(match[2]!, expected)) return { ok: false, reason: 'BAD_SIGNATURE' };
  const age = now / 1000 - timestamp;
  if (age > replayWindowSeconds || age < -futureSkewSeconds) return { ok: false, reason: 'STALE_TIMESTAMP' };
  return { ok: true, timestamp, signature: match[2]! };
}

/**
 * verifyTimestamped with each of a source's accepted secrets in turn (its current one, then during a rotation's
 * overlap the one before): the first that verifies; else a stale timestamp if one of them made the signature
 * (signed, but too long ago), else why the current one refused it.
 */
export function verifyTimestampedWithAny(secrets: readonly string[], body: Buffer, header: string | undefined, now = Date.now()): TimestampedVerdict {
  let refused: TimestampedVerdict | undefined;
  for (const secret of secrets) {
    const verdict = verifyTimestamped(secret, body, header, now);
    if (verdict.ok) return verdict;
    if (!refused || verdict.reason === 'STALE_TIMESTAMP') refused = verdict;
  }
  return refused ?? { ok: false, reason: 'BAD_SIGNATURE' };
}
