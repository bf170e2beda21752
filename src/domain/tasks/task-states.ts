import type { TaskStatus } from '../../generated/prisma/enums.js';

/** A task in one of these may still run: it holds its org and can be cancelled. */
export const activeTaskStatuses = ['SCHEDULED', 'QUEUED', 'RUNNING'] as const satisfies readonly TaskStatus[];
/** Waiting in a queue: cancelling just removes the job. */
export const waitingTaskStatuses = ['SCHEDULED', 'QUEUED'] as const satisfies readonly TaskStatus[];
/** Ended unsuccessfully: retryTask may run it again. */
export const retryableTaskStatuses = ['FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[];
export const finalTaskStatuses = ['SUCCEEDED', 'FAILED', 'CANCELLED'] as const satisfies readonly TaskStatus[];
