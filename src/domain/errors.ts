// Expected failures of the domain, each with a stable code that clients can branch on. The GraphQL layer
// maps these classes to typed error results; anything that is not a DomainError is masked as an internal
// error. Messages must never contain credentials or other secret input.
import type { ZodError } from 'zod';

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
  'IDEMPOTENCY_KEY_REUSED',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
}

export interface FieldIssue {
  path: string[];
  message: string;
}

export class ValidationFailedError extends DomainError {
  readonly code = 'VALIDATION_FAILED' as const;
  constructor(readonly issues: FieldIssue[]) {
    super(
      issues.length === 1
        ? `Invalid input at ${formatPath(issues[0]!.path)}: ${issues[0]!.message}`
        : `Invalid input (${issues.length} problems): ${issues.map((i) => formatPath(i.path)).join(', ')}`,
    );
  }

  static fromZod(error: ZodError, prefix: string[] = []): ValidationFailedError {
    return new ValidationFailedError(
      error.issues.map((issue) => ({ path: [...prefix, ...issue.path.map(String)], message: issue.message })),
    );
  }

  static single(path: string[], message: string): ValidationFailedError {
    return new ValidationFailedError([{ path, message }]);
  }
}

function formatPath(path: string[]): string {
  return path.length > 0 ? path.join('.') : '(input)';
}

export class NotFoundError extends DomainError {
  constructor(
    readonly code:
      | 'ORG_NOT_FOUND'
      | 'TASK_NOT_FOUND'
      | 'TOKEN_NOT_FOUND'
      | 'SCHEDULE_NOT_FOUND'
      | 'ARTIFACT_NOT_FOUND'
      | 'WEBHOOK_SOURCE_NOT_FOUND'
      | 'WEBHOOK_RULE_NOT_FOUND'
      | 'SUBSCRIBER_NOT_FOUND',
    message: string,
  ) {
    super(message);
  }
}

export class ConflictError extends DomainError {
  constructor(
    readonly code: 'ALIAS_TAKEN' | 'ORG_HAS_ACTIVE_TASKS' | 'IDEMPOTENCY_KEY_REUSED',
    message: string,
  ) {
    super(message);
  }
}

export class InvalidCredentialsError extends DomainError {
  readonly code = 'INVALID_CREDENTIALS' as const;
  constructor(
    message: string,
    readonly path: string[] = ['credentials'],
  ) {
    super(message);
  }
}

export class InvalidStateError extends DomainError {
  constructor(
    readonly code: 'TASK_NOT_CANCELLABLE' | 'TASK_NOT_RETRYABLE',
    message: string,
    readonly currentStatus: string,
  ) {
    super(message);
  }
}

/**
 * Runs a write (update or delete) of a row the caller has just found. Should a concurrent request delete the row
 * in between, Prisma refuses the write with P2025 ("record to update or delete not found"); the caller then
 * answers `notFound()`, exactly as it would have a moment later, when its own lookup would have missed the row.
 * Throwing also stops the caller before its side effects (audit entries in the same transaction roll back;
 * secrets, schedulers and announcements after it are skipped): the request that did delete the row does them.
 */
export async function unlessGone<T>(write: () => Promise<T>, notFound: () => NotFoundError): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if ((error as { code?: unknown }).code === 'P2025') throw notFound();
    throw error;
  }
}

/** Runs a queue operation; any failure of it means Redis is unreachable for the caller. */
export async function withQueue<T>(operation: () => Promise<T>, what: string): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw new UnavailableError('QUEUE_UNAVAILABLE', `The task queue (Redis) is unavailable: could not ${what}`, error);
  }
}

export class UnavailableError extends DomainError {
  constructor(
    readonly code: 'QUEUE_UNAVAILABLE',
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}
