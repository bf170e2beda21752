// Putting a job back to wait, from inside its processor, without spending one of its attempts: BullMQ's
// moveToDelayed followed by a DelayedError, which tells the worker the job has been moved and is not a failure.
import { DelayedError, type Job } from 'bullmq';

/** Moves the job being processed back to wait `delayMs`; never returns (the processor ends with a DelayedError). */
export async function delayJob(job: Job, token: string | undefined, delayMs: number): Promise<never> {
  await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}

/** How many times the job has been put back so far: runs started (attemptsStarted) that were not attempts. */
export function timesDelayed(job: Job): number {
  return Math.max(0, (job.attemptsStarted ?? 0) - (job.attemptsMade ?? 0) - 1);
}
