export const errorCodes = [
    'VALIDATION_FAILED',
    'ORG_NOT_FOUND',
    'TASK_NOT_FOUND',
    'TOKEN_NOT_FOUND',
    'SCHEDULE_NOT_FOUND',
    'ARTIFACT_NOT_FOUND',
    'WEBHOOK_SOURCE_NOT_FOUND',
    'WEBHOOK_RULE_NOT_FOUND',
    'SUBSCRIBER_NOT_FOUND',
    'ALIAS_TAKEN',
    'INVALID_CREDENTIALS',
    'ORG_HAS_ACTIVE_TASKS',
    'TASK_NOT_CANCELLABLE',
    'TASK_NOT_RETRYABLE',
    'QUEUE_UNAVAILABLE',
];
export class DomainError extends Error {
}
export class ValidationFailedError extends DomainError {
    issues;
    code = 'VALIDATION_FAILED';
    constructor(issues) {
        super(issues.length === 1
            ? `Invalid input at ${formatPath(issues[0].path)}: ${issues[0].message}`
            : `Invalid input (${issues.length} problems): ${issues.map((i) => formatPath(i.path)).join(', ')}`);
        this.issues = issues;
    }
    static fromZod(error, prefix = []) {
        return new ValidationFailedError(error.issues.map((issue) => ({ path: [...prefix, ...issue.path.map(String)], message: issue.message })));
    }
    static single(path, message) {
        return new ValidationFailedError([{ path, message }]);
    }
}
function formatPath(path) {
    return path.length > 0 ? path.join('.') : '(input)';
}
export class NotFoundError extends DomainError {
    code;
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}
export class ConflictError extends DomainError {
    code;
    constructor(code, message) {
        super(message);
        this.code = code;
    }
}
export class InvalidCredentialsError extends DomainError {
    path;
    code = 'INVALID_CREDENTIALS';
    constructor(message, path = ['credentials']) {
        super(message);
        this.path = path;
    }
}
export class InvalidStateError extends DomainError {
    code;
    currentStatus;
    constructor(code, message, currentStatus) {
        super(message);
        this.code = code;
        this.currentStatus = currentStatus;
    }
}
/** Runs a queue operation; any failure of it means Redis is unreachable for the caller. */
export async function withQueue(operation, what) {
    try {
        return await operation();
    }
    catch (error) {
        throw new UnavailableError('QUEUE_UNAVAILABLE', `The task queue (Redis) is unavailable: could not ${what}`, error);
    }
}
export class UnavailableError extends DomainError {
    code;
    constructor(code, message, cause) {
        super(message, { cause });
        this.code = code;
    }
}
