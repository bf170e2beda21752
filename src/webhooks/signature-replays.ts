// A request signed with X-Switchyard-Signature may be sent again, as it is, while its timestamp is within the
// window: that is what the window allows. Its delivery id (X-Switchyard-Delivery, Idempotency-Key) is not
// signed, so a copy under a new id would otherwise be a new delivery. Each signature is remembered, with the
// delivery it came with, for as long as it verifies; a request carrying it again is that delivery, whatever id
// it claims, and is answered as its duplicate.
import type { Redis } from 'ioredis';
import { futureSkewSeconds, replayWindowSeconds } from './signatures.js';

/** How long a signature verifies at most: a timestamp up to the skew ahead, then the whole window. */
const rememberMs = (replayWindowSeconds + futureSkewSeconds) * 1000;

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
export async function firstDeliveryKey(redis: Redis, prefix: string, sourceId: string, signature: string, deliveryKey: string): Promise<string> {
  try {
    return String(await redis.eval(firstScript, 1, `${prefix}:webhooks:signature:${sourceId}:${signature}`, deliveryKey, rememberMs));
  } catch {
    return deliveryKey;
  }
}
