/** A failure with a stable code. Retryable ones are run again (with backoff) while attempts remain. */
export class OperationError extends Error {
    code;
    retryable;
    constructor(code, message, retryable = false) {
        super(message);
        this.code = code;
        this.retryable = retryable;
    }
}
