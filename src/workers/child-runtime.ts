// What the per-task child process runs (child-main.ts, or the child snapshot's main function,
// child-snapshot/snapshot-main.ts). It holds credentials for one operation only: it redeems its single-use grant
// when the operation first asks, keeps the value in this closure, and exits when the operation ends, so the
// credentials die with the process. It imports neither Prisma nor Redis.
import type { CredentialGrant } from '../secrets/secret-store.js';
import { snapshotUse } from './child-snapshot/preloaded.js';
import type { AbortReason, ChildMessage, LogLevel, ParentMessage, RunRequest } from './ipc-protocol.js';
import { OperationError, type OperationContext, type OrgCredentials } from './operations/operation.js';
import { operationLoaders } from './operations/registry.js';

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(message, undefined, {}, () => resolve());
  });
}

// An error nothing caught (a rejection nobody awaited, a throw in a library's callback): Node would print the whole
// error object on the worker's stderr, and a library's error can carry its request (headers with a Vault token,
// a body with credentials). Only its class is told, and the child exits: the worker sees a crash (CHILD_CRASHED).
const unexpected = (error: unknown) => {
  process.stderr.write(`switchyard task child ${process.pid}: unexpected ${error instanceof Error ? error.name : typeof error}, exiting\n`);
  process.exit(71);
};

const abort = new AbortController();
let pendingCredentials: ((message: Extract<ParentMessage, { t: 'credentials' }>) => void) | null = null;
let pendingGrant: ((message: Extract<ParentMessage, { t: 'grant' }>) => void) | null = null;

/**
 * Asks the worker for the run's grant (issued only now: a run that never needs credentials leaves none). A run
 * stopped meanwhile stops waiting (the worker's Vault round trip can take seconds), unless it must cancel an
 * earlier attempt's deployment (`resume`), which it needs the credentials for.
 */
async function askForGrant(request: RunRequest): Promise<CredentialGrant> {
  const answer = await new Promise<Extract<ParentMessage, { t: 'grant' }>>((resolve, reject) => {
    pendingGrant = resolve;
    if (!request.resume) {
      if (abort.signal.aborted) return reject(abort.signal.reason);
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true });
    }
    void send({ t: 'grant' });
  });
  pendingGrant = null;
  if (!answer.grant) throw new OperationError('CREDENTIALS_UNAVAILABLE', answer.error ?? 'The secret store did not issue the org\'s credentials', answer.retryable ?? true);
  return answer.grant;
}

/**
 * What the operation's signal is aborted with. A shutdown is not the end of the task's work: it runs again
 * on another worker, and an operation may leave Salesforce busy with it for the retry to follow.
 */
function abortError(reason: AbortReason): OperationError {
  if (reason === 'shutdown') return new OperationError('WORKER_SHUTDOWN', 'The worker is shutting down', true);
  return new OperationError('ABORTED', reason === 'timeout' ? 'The task timed out' : 'The task was cancelled');
}

async function redeem(request: RunRequest): Promise<OrgCredentials> {
  const grant = request.grant.kind === 'ask' ? await askForGrant(request) : request.grant;
  let value: Record<string, string> | null;
  if (grant.kind === 'vault') {
    const { unwrapVaultGrant } = await import('../secrets/vault-unwrap.js');
    value = await unwrapVaultGrant(grant).catch(() => {
      throw new OperationError('CREDENTIALS_UNAVAILABLE', 'Vault did not unwrap the credential grant (spent, expired or Vault unreachable)', true);
    });
  } else {
    const answer = await new Promise<Extract<ParentMessage, { t: 'credentials' }>>((resolve) => {
      pendingCredentials = resolve;
      void send({ t: 'redeem', token: grant.token });
    });
    pendingCredentials = null;
    if (answer.error || !answer.value) throw new OperationError('CREDENTIALS_UNAVAILABLE', answer.error ?? 'The credential grant was not honoured', answer.retryable ?? false);
    value = answer.value;
  }
  if (!value?.refreshToken || !value.instanceUrl) throw new OperationError('CREDENTIALS_UNAVAILABLE', 'The stored credentials are incomplete', false);
  return value as unknown as OrgCredentials;
}

async function run(request: RunRequest): Promise<void> {
  // A run that only cancels (the task was cancelled while it waited for this retry) starts out aborted: the
  // operation follows the deployment in `resume` just far enough to cancel it.
  if (request.resume?.cancel) abort.abort(abortError('cancelled'));
  let credentials: Promise<OrgCredentials> | null = null;
  const ctx: OperationContext = {
    taskId: request.taskId,
    attempt: request.attempt,
    maxAttempts: request.maxAttempts,
    params: request.params,
    org: request.org,
    files: request.files,
    ...(request.resume ? { resume: request.resume } : {}),
    credentials: () => (credentials ??= redeem(request)),
    progress: (percent, phase, details) =>
      void send({ t: 'progress', percent: Math.max(0, Math.min(100, Math.round(percent))), ...(phase ? { phase } : {}), ...(details ? { details } : {}) }),
    log: (message: string, level: LogLevel = 'info') => void send({ t: 'log', level, message }),
    signal: abort.signal,
  };
  try {
    const loader = operationLoaders[request.type];
    if (!loader) throw new OperationError('UNKNOWN_TASK_TYPE', `No operation for task type ${request.type}`);
    const operation = (await loader()).default;
    const result = await operation.run(ctx);
    await send({ t: 'done', result: result ?? null });
  } catch (error) {
    const known = error instanceof OperationError;
    await send({
      t: 'failed',
      code: known ? error.code : 'OPERATION_ERROR',
      // Unknown errors are reported by class only: their messages could quote anything, credentials included.
      message: known ? error.message : `The operation failed unexpectedly (${(error as Error)?.name ?? 'Error'})`,
      retryable: known ? error.retryable : false,
      ...(known && error.details !== undefined ? { details: error.details } : {}),
    });
  } finally {
    process.exit(0);
  }
}

/** Starts the child: listens to the worker, and tells it the child is ready for its one `run`. */
export function runChild(): void {
  // The worker is gone (crashed or killed): nobody can use our result, and nobody should hold credentials.
  process.on('disconnect', () => process.exit(70));
  process.on('uncaughtException', unexpected);
  process.on('unhandledRejection', unexpected);
  process.on('message', (message: ParentMessage) => {
    if (message.t === 'run') void run(message.request);
    else if (message.t === 'credentials') pendingCredentials?.(message);
    else if (message.t === 'grant') pendingGrant?.(message);
    else if (message.t === 'abort') abort.abort(abortError(message.reason));
  });
  const snapshot = snapshotUse();
  void send(snapshot ? { t: 'ready', snapshot } : { t: 'ready' });
}
