/** A failure with a stable code. Retryable ones are run again (with backoff) while attempts remain. */
export class OperationError extends Error {
    code;
    retryable;
    details;
    constructor(code, message, retryable = false, 
    /** Kept as the task's result, e.g. a failed deployment's component and test failures. */
    details) {
        super(message);
        this.code = code;
        this.retryable = retryable;
        this.details = details;
    }
}
