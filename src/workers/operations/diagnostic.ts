// DIAGNOSTIC: walks through `steps` steps reporting progress, optionally fails, optionally redeems the
// org's credentials and reports a fingerprint of them. Used to check a deployment end to end without
// touching Salesforce, and by the tests and benchmarks.
import type { TaskParams } from '../../domain/tasks/task-params.js';
import { OperationError, type Operation } from './operation.js';

type Params = TaskParams<'DIAGNOSTIC'>;

function sleep(ms: number, signal: AbortSignal | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const diagnostic: Operation<Params> = {
  async run(ctx) {
    const { params } = ctx;
    let fingerprint: string | undefined;
    if (params.readCredentials) {
      const credentials = await ctx.credentials();
      // Imported here, not at the top: node:crypto costs a no-op task child a few ms of start-up CPU.
      const { createHash } = await import('node:crypto');
      fingerprint = createHash('sha256').update(credentials.refreshToken).digest('hex').slice(0, 12);
      ctx.log('credentials redeemed');
    }
    const signal = params.ignoreAbort ? null : ctx.signal;
    for (let step = 1; step <= params.steps; step += 1) {
      await sleep(params.stepMs, signal);
      ctx.progress(Math.round((step / params.steps) * 100), `step ${step} of ${params.steps}`);
    }
    const fail = params.failWith;
    if (fail && (fail.failTimes === undefined || ctx.attempt <= fail.failTimes)) {
      throw new OperationError(fail.code, fail.message, fail.retryable);
    }
    return { steps: params.steps, attempt: ctx.attempt, pid: process.pid, ...(fingerprint ? { credentialFingerprint: fingerprint } : {}) };
  },
};

export default diagnostic;
