// The contract every task type's operation implements. Operations run inside the per-task child process:
// they may import what talks to Salesforce, never Prisma or Redis.
import type { LogLevel } from '../ipc-protocol.js';

export interface OrgCredentials {
  instanceUrl: string;
  refreshToken: string;
  clientId?: string;
  clientSecret?: string;
}

export interface OperationContext<P = unknown> {
  taskId: string;
  /** 1 for the first run, 2 for the first retry… */
  attempt: number;
  /** The task's limit on attempts: when `attempt` has reached it, no retry follows this run. */
  maxAttempts: number;
  params: P;
  org: { alias: string; instanceUrl: string };
  files: { artifactDir: string; sourceZip?: string };
  /** On a retry: the deployment an earlier attempt started in Salesforce; follow it rather than start another. */
  resume?: { deployId: string };
  /** Redeems the task's single-use grant the first time it is called; later calls return the same value. */
  credentials(): Promise<OrgCredentials>;
  /** Reports progress; `details` (counters such as components deployed) goes into the PROGRESS event. */
  progress(percent: number, phase?: string, details?: Record<string, unknown>): void;
  log(message: string, level?: LogLevel): void;
  /**
   * Aborted when the task is cancelled or times out (stop promptly and clean up), or when the worker shuts down
   * (`isShutdown`): then the task runs again elsewhere if attempts remain, and work it started in Salesforce
   * may be left for that retry to pick up.
   */
  signal: AbortSignal;
}

export interface Operation<P = unknown> {
  run(ctx: OperationContext<P>): Promise<unknown>;
}

/** Whether an operation's signal was aborted because its worker is shutting down (not cancelled or timed out). */
export function isShutdown(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof OperationError && signal.reason.code === 'WORKER_SHUTDOWN';
}

/** A failure with a stable code. Retryable ones are run again (with backoff) while attempts remain. */
export class OperationError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
    /** Kept as the task's result, e.g. a failed deployment's component and test failures. */
    readonly details?: unknown,
  ) {
    super(message);
  }
}
