// A signed request may be sent again, as it is, by whoever has a copy of it. Its delivery id (X-GitHub-Delivery,
// X-Switchyard-Delivery, Idempotency-Key) is not signed, so a copy under a new id would otherwise be a new
// delivery, and fire its rules again: a deployment, say. Each signature is remembered, with the delivery it came
// with, and a request carrying it again is that delivery, whatever id it claims, answered as its duplicate:
// - X-Switchyard-Signature (Salesforce relays, CI): for as long as it verifies (its timestamp's window);
// - GitHub's X-Hub-Signature-256, which signs the body alone and never expires: for 3 days (a key of about 250
//   bytes a delivery, in a Redis that must not evict: longer would cost busy installations real memory). A real
//   GitHub delivery is never byte for byte another one (each carries its commits, shas or timestamps), and GitHub
//   redelivers a delivery under its own id; an older copy sent again would pass.
// GitLab sends its secret itself, not a signature: whoever has a copy of a request has the secret.
import type { Redis } from 'ioredis';
import { futureSkewSeconds, replayWindowSeconds } from './signatures.js';

export type SignatureScheme = 'github' | 'timestamped';

/** How long a signature is remembered, by scheme. */
export const signatureMemoryMs: Record<SignatureScheme, number> = {
  /** As long as it verifies at most: a timestamp up to the skew ahead, then the whole window. */
  timestamped: (replayWindowSeconds + futureSkewSeconds) * 1000,
  github: 3 * 24 * 3600 * 1000,
};

const firstScript = `
local first = redis.call('GET', KEYS[1])
if first then return first end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`;

/**
 * The delivery key of the first request that carried `signature` to this source: `deliveryKey` itself for the
 * first. When Redis cannot be asked, `deliveryKey` (the delivery id still de-duplicates copies that keep it).
 */
export async function firstDeliveryKey(
  redis: Redis,
  prefix: string,
  sourceId: string,
  signature: { scheme: SignatureScheme; value: string },
  deliveryKey: string,
): Promise<string> {
  try {
    return String(await redis.eval(firstScript, 1, `${prefix}:webhooks:signature:${sourceId}:${signature.value}`, deliveryKey, signatureMemoryMs[signature.scheme]));
  } catch {
    return deliveryKey;
  }
}
