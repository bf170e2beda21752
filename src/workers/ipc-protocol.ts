// Messages between a worker and the child process running one task. The child starts empty, announces
// `ready`, receives exactly one `run`, and exits after `done` or `failed`. Credentials travel only in
// `credentials`, in answer to the child's own `redeem` of its single-use grant. With Vault, the grant itself is
// issued only when the operation first needs credentials: the child asks (`grant`), the worker answers with a
// wrapping token (`grant`), and the child unwraps it at Vault.
import type { CredentialGrant, SecretValue } from '../secrets/secret-store.js';
import type { SnapshotUse } from './child-snapshot/preloaded.js';

export interface RunRequest {
  taskId: string;
  type: string;
  attempt: number;
  /** The task's limit: on the last attempt nothing runs again after a failure or a shutdown. */
  maxAttempts: number;
  params: unknown;
  org: { alias: string; instanceUrl: string };
  /** The run's grant, or `ask`: the child asks for it (`grant`) when the operation first needs credentials. */
  grant: CredentialGrant | { kind: 'ask' };
  /** Files the operation may use: the artifact store, and the zip a deployment deploys. */
  files: { artifactDir: string; sourceZip?: string };
  /**
   * On a retry: the deployment an earlier attempt started, which this one follows instead of starting another.
   * `cancel`: the task was cancelled while it waited for this retry; cancel that deployment, and nothing else.
   */
  resume?: { deployId: string; cancel?: true };
}

/** Why the worker stops an operation: its task was cancelled or ran out of time, or the worker is shutting down. */
export type AbortReason = 'cancelled' | 'timeout' | 'shutdown';

export type ParentMessage =
  | { t: 'run'; request: RunRequest }
  /** `retryable`: the store could not be read just now (a new attempt gets a new grant). */
  | { t: 'credentials'; value: SecretValue | null; error?: string; retryable?: boolean }
  | { t: 'abort'; reason: AbortReason }
  /** The answer to the child's `grant`: a Vault grant, or why not (`retryable`: a later attempt may get one). */
  | { t: 'grant'; grant: CredentialGrant | null; error?: string; retryable?: boolean };

export type LogLevel = 'info' | 'warn' | 'error';

export type ChildMessage =
  /** `snapshot`: how a child started from the child snapshot used it (absent: not started from one). */
  | { t: 'ready'; snapshot?: SnapshotUse }
  | { t: 'redeem'; token: string }
  | { t: 'grant' }
  | { t: 'progress'; percent: number; phase?: string; details?: Record<string, unknown> }
  | { t: 'log'; level: LogLevel; message: string }
  | { t: 'done'; result: unknown }
  | { t: 'failed'; code: string; message: string; retryable: boolean; details?: unknown };
