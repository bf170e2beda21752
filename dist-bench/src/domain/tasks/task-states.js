/** A task in one of these may still run: it holds its org and can be cancelled. */
export const activeTaskStatuses = ['SCHEDULED', 'QUEUED', 'RUNNING'];
/** Waiting in a queue: cancelling just removes the job. */
export const waitingTaskStatuses = ['SCHEDULED', 'QUEUED'];
/** Ended unsuccessfully: retryTask may run it again. */
export const retryableTaskStatuses = ['FAILED', 'CANCELLED'];
export const finalTaskStatuses = ['SUCCEEDED', 'FAILED', 'CANCELLED'];
