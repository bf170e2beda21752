// A status poll of a running deployment or retrieve (checkDeployStatus, checkRetrieveStatus) that rides out a
// short outage. SOAP calls are POSTs, which jsforce never retries, and a failed poll used to end the attempt:
// with a two-second poll, one dropped connection in a three-hour deployment cost an attempt, and an outage of
// ~15 s all of them, while the deployment went on in Salesforce. A poll that fails retryably (the org
// unreachable, an API limit) is tried again after a growing wait; only the `pollRetries`+1-th failure in a row
// ends the attempt (whose retry then follows the deployment).
import { setTimeout as sleep } from 'node:timers/promises';
import type { OperationContext } from '../operation.js';
import { toOperationError } from './errors.js';

/** Failed polls in a row tried again before the attempt fails: with the default 2 s poll, about a minute. */
export const pollRetries = 5;
const maxPollWaitMs = 30_000;

export async function pollStatus<T>(poll: () => Promise<T>, ctx: OperationContext, doing: string, pollIntervalMs: number): Promise<T> {
  for (let failures = 0; ; failures += 1) {
    try {
      return await poll();
    } catch (error) {
      const failure = toOperationError(error, doing);
      if (!failure.retryable || failures >= pollRetries || ctx.signal.aborted) throw failure;
      const waitMs = Math.min(pollIntervalMs * 2 ** failures, maxPollWaitMs);
      ctx.log(`${failure.message}; polling again in ${waitMs} ms (${pollRetries - failures} more ${pollRetries - failures === 1 ? 'try' : 'tries'})`, 'warn');
      await sleep(waitMs, undefined, { signal: ctx.signal }).catch(() => undefined);
    }
  }
}
