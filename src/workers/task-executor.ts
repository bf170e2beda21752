// Runs one BullMQ job: claims its task, takes the org lock when the type needs it, hands a fresh child the
// request and a single-use credential grant (with Vault, when the child asks for it), relays the child's
// reports into the task's event log, and settles the task from the child's outcome. Retries are BullMQ's (attempts with exponential backoff);
// this decides which failures deserve one.
import { setTimeout as sleep } from 'node:timers/promises';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { delayJob } from '../queues/delay-job.js';
import type { Logger } from 'pino';
import type { Task } from '../generated/prisma/client.js';
import { deploymentTypes } from '../domain/tasks/started-deployment.js';
import { defaultTimeoutMsFor, orgExclusiveTypes } from '../domain/tasks/task-params.js';
import { NotFoundError } from '../domain/errors.js';
import type { TaskEffects } from '../domain/tasks/task-effects.js';
import type { OrgRef, TaskFailure, TaskLifecycle } from '../domain/tasks/task-lifecycle.js';
import type { RunGuard } from '../domain/tasks/task-statements.js';
import type { TaskJobData } from '../queues/task-queues.js';
import type { CredentialGrant, SecretStore, SecretValue } from '../secrets/secret-store.js';
import type { ChildLauncher } from './child-launcher.js';
import { childMessageKinds } from './child-message.js';
import { ChildSession, type ChildOutcome, type FailedReport, type GrantRefusal } from './child-session.js';
import type { RunRequest } from './ipc-protocol.js';
import type { OrgLock } from './org-lock.js';

export interface ExecutorOptions {
  workerId: string;
  /** Grace between abort request, SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** Wrap TTL of credential grants; at most 60 s. */
  grantTtlSeconds: number;
  /** How often a task waiting for its org lock looks again. */
  lockPollMs: number;
}

export interface ExecutorDeps {
  lifecycle: TaskLifecycle;
  effects: TaskEffects;
  secrets: SecretStore;
  /** Redeems IPC grants of the built-in store; null for Vault, whose grants the child unwraps itself. */
  redeemIpcGrant: ((token: string) => Promise<SecretValue | null>) | null;
  launcher: ChildLauncher;
  orgLock: OrgLock;
  /**
   * Whether a worker's heartbeat is in Redis and lists the task among those it runs, and how long to wait before
   * asking twice (as the reconciler does).
   */
  isRunningTask: (workerId: string, taskId: string) => Promise<boolean>;
  workerGraceMs: number;
  logger: Logger;
}

/** claimAndRun()'s answer when the task could not be claimed for this job. */
const notClaimed = Symbol('not claimed');
/** claimAndRun()'s answer when another job of the same task is being claimed or run in this worker. */
const busy = Symbol('busy');
/** claimAndRun()'s answer when the worker's shutdown has aborted its runs: a run not yet started is left to another worker. */
const closing = Symbol('closing');
/** Tasks whose waiting phase (lastWaitPhase) a worker remembers; beyond it, the oldest is forgotten. */
const maxRememberedWaits = 1000;

/** A run that failed and whose retry is queued (its message is the failure's code): BullMQ retries any Error. */
class RetryLater extends Error {}

/**
 * A failure that is the outcome of the work itself, not of how it was run: Salesforce ended the task's
 * deployment Failed. It stands whether or not the task was being cancelled, timed out or shut down meanwhile,
 * and it is final. Only a deployment type can report it (a DIAGNOSTIC may report any code it is asked to).
 */
function endedOnItsOwn(task: Task, report: FailedReport): boolean {
  return deploymentTypes.has(task.type) && report.code === 'DEPLOY_FAILED';
}

/** A run whose process the system refused to fork (`code`: EAGAIN, EMFILE, ENFILE). The next attempt forks again. */
function notStartedFailure(code: string): FailedReport {
  return { kind: 'failed', code: 'WORKER_ERROR', message: `The worker could not start the task's process (${code})`, retryable: true };
}

/** What the worker learns about a run as it goes. */
interface RunState {
  deployId: string | undefined;
}

/** The run a claimed task is: every write of the run's own is made only while the task is still it (ChangeOptions.run). */
function runOf(task: Task): RunGuard {
  return { workerId: task.workerId!, attempts: task.attempts };
}

/** Failures in a row before a run is claimed that a job rides out (looking again every lockPollMs: about a minute). */
const maxFailuresBeforeClaim = 30;
/** An entry of failuresBeforeClaim older than this is forgotten when the map is pruned. */
const failuresInARowWithinMs = 10 * 60_000;

/** Retry delay BullMQ will use before attempt `attempt + 1` with exponential backoff. */
function backoffFor(task: Task, attempt: number): number {
  return task.backoffMs * 2 ** Math.max(0, attempt - 1);
}

export class TaskExecutor {
  /** Sessions by task id, so cancellation and shutdown can reach them. */
  readonly running = new Map<string, ChildSession>();
  private readonly lastWaitPhase = new Map<string, string>();
  /**
   * By task: the passes in this worker holding its org lock. Two jobs of one task can be in this worker at once (a
   * stalled one handed back, say); both hold the lock as the same holder (task and worker), and it is released when
   * the last of them is done, not when the first (a pass answered `busy`) leaves.
   */
  private readonly lockHolds = new Map<string, number>();
  /** Set when a shutdown's drain time is up: runs that start from then on are aborted as they start. */
  private shuttingDown = false;
  /** By job id: failures in a row before the task's run was claimed (process), and when the last was. */
  private readonly failuresBeforeClaim = new Map<string, { count: number; at: number }>();

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {}

  /**
   * Runs the job's task. A failure before the task's run is claimed (Postgres or Redis not answering for a moment,
   * while the task is loaded, waits for the org lock, or is claimed) is this worker's, not the task's: the job
   * looks again shortly instead, without using up one of its attempts (each stands for one of the task's runs).
   * Only after many such failures in a row does it fail as it would have (a fault that does not pass).
   */
  async process(job: Job<TaskJobData>, token: string | undefined): Promise<unknown> {
    const progress = { claimed: false };
    try {
      const result = await this.processJob(job, token, progress);
      this.failuresBeforeClaim.delete(job.id!);
      return result;
    } catch (error) {
      // A pass that ended waiting (for the org lock, say) got past where this counts failures: the row is broken.
      if (error instanceof DelayedError) this.failuresBeforeClaim.delete(job.id!);
      if (error instanceof DelayedError || error instanceof UnrecoverableError || progress.claimed) throw error;
      const failures = (this.failuresBeforeClaim.get(job.id!)?.count ?? 0) + 1;
      if (failures > maxFailuresBeforeClaim) {
        this.failuresBeforeClaim.delete(job.id!);
        throw error;
      }
      this.noteFailureBeforeClaim(job.id!, failures);
      this.deps.logger.warn({ err: error, taskId: job.data.taskId, failures }, 'could not start the task just now; looking again shortly');
      return this.lookAgainLater(job, token);
    }
  }

  /**
   * Counts a failure in a row for `jobId`. Entries of jobs that never come back here (run by another worker,
   * cancelled while they waited) are dropped once they are old: far apart, failures are not in a row anyway.
   */
  private noteFailureBeforeClaim(jobId: string, count: number): void {
    const now = Date.now();
    if (this.failuresBeforeClaim.size >= 1000) {
      for (const [id, entry] of this.failuresBeforeClaim) if (now - entry.at > failuresInARowWithinMs) this.failuresBeforeClaim.delete(id);
    }
    this.failuresBeforeClaim.set(jobId, { count, at: now });
  }

  private async processJob(job: Job<TaskJobData>, token: string | undefined, progress: { claimed: boolean }): Promise<unknown> {
    // The usual case first, in one statement: a waiting task whose current job this is, of a type that needs
    // no org lock. Anything else (a stale job, a lost run, a removed org, a lock to wait for) is sorted out below.
    // Not for a job that has stalled before: its task may still be running on a live worker (see below), and a
    // claim attempt takes a child it would then throw away.
    if (!orgExclusiveTypes.has(job.name as Task['type']) && !job.stalledCounter) {
      const ran = await this.claimAndRun(job, progress);
      if (ran === closing) return this.lookAgainLater(job, token);
      if (ran !== notClaimed && ran !== busy) return ran;
    }

    const { lifecycle } = this.deps;
    let task = await lifecycle.load(job.data.taskId);
    // A job of an earlier attempt, or of a task that no longer exists: nothing to do.
    if (!task || task.jobId !== job.id) return { skipped: 'stale job' };

    if (task.status === 'RUNNING') {
      if (this.running.has(task.id)) return { skipped: 'task is running in this worker' };
      // BullMQ handed this job over as stalled, or for a retry. Its worker died, lost track of the run (it could
      // not record the outcome), or only lost the job's lock while its run goes on (Redis unreachable, or its event
      // loop blocked, for longer than the lock lasts): a run its worker still has is left to finish, and this job
      // looks again later (then finds the task settled, or the run gone).
      if (await this.stillRunning(task.workerId, task.id)) return this.lookAgainLater(job, token, this.deps.workerGraceMs);
      const lost = { code: 'WORKER_LOST', message: 'The worker running this task stopped unexpectedly' };
      if (task.attempts >= task.maxAttempts) {
        await lifecycle.fail(task.id, lost, ['RUNNING'], { jobId: job.id! });
        throw new UnrecoverableError(lost.code);
      }
      if (!(await lifecycle.requeue(task.id, lost, 0, { jobId: job.id! }))) return { skipped: 'task moved on meanwhile' };
      task = (await lifecycle.load(task.id))!;
    }
    if (task.status !== 'QUEUED' && task.status !== 'SCHEDULED') return { skipped: `task is ${task.status}` };
    if (!task.org) {
      await lifecycle.fail(task.id, { code: 'ORG_NOT_FOUND', message: `Org ${task.orgAlias} was removed` }, ['QUEUED', 'SCHEDULED']);
      throw new UnrecoverableError('ORG_NOT_FOUND');
    }
    const org = task.org;

    // A run that only cancels an earlier attempt's deployment (cancelRequestedAt on a waiting task) deploys nothing:
    // it must not wait behind other deployments for the org lock.
    const exclusive = orgExclusiveTypes.has(task.type) && !task.cancelRequestedAt;
    if (!exclusive) this.lastWaitPhase.delete(task.id);
    const lockRun = { taskId: task.id, workerId: this.options.workerId };
    if (exclusive) {
      const attempt = await this.deps.orgLock.tryAcquire(org.id, lockRun, task.createdAt);
      if (!attempt.acquired) {
        const phase = `waiting for the org lock: position ${attempt.position}${attempt.holder ? `, held by task ${attempt.holder}` : ''}`;
        await lifecycle.waiting(task.id, phase, this.noteWaitPhase(task.id, phase));
        return this.lookAgainLater(job, token);
      }
      this.lastWaitPhase.delete(task.id);
      this.lockHolds.set(task.id, (this.lockHolds.get(task.id) ?? 0) + 1);
    }

    const renewLock = async () => {
      if (await this.deps.orgLock.renew(org.id, lockRun)) return;
      // Redis lost the lock and another deployment took it before this renewal could take it back, or this
      // worker was presumed dead and another one runs the task again.
      this.deps.logger.warn({ taskId: task!.id, orgId: org.id }, 'another run holds the org lock while this deployment runs');
    };
    const renewTimer = exclusive ? setInterval(() => void renewLock().catch(() => undefined), this.deps.orgLock.leaseMs / 3) : undefined;
    try {
      const ran = await this.claimAndRun(job, progress);
      if (ran === busy) {
        // Another job of this task (a stale one) is being claimed here right now; its claim will fail on the job
        // id. Look again shortly rather than completing this, the task's current job, with nothing done.
        return this.lookAgainLater(job, token);
      }
      // Unclaimed, so no attempt spent: the job waits for a worker that is not shutting down.
      if (ran === closing) return this.lookAgainLater(job, token);
      return ran === notClaimed ? { skipped: 'task left the queue before it started' } : ran;
    } finally {
      clearInterval(renewTimer);
      if (exclusive && this.releaseHold(task.id)) await this.deps.orgLock.release(org.id, lockRun).catch(() => undefined);
    }
  }

  /**
   * Whether the worker `workerId` still runs the task: its heartbeat lists it now, or again after a grace (right
   * after a Redis restart every live worker's heartbeat is missing until its next beat, and a run that has just
   * begun is listed from the next beat on).
   */
  private async stillRunning(workerId: string | null, taskId: string): Promise<boolean> {
    if (!workerId || workerId === this.options.workerId) return false;
    if (await this.deps.isRunningTask(workerId, taskId)) return true;
    await sleep(this.deps.workerGraceMs);
    return this.deps.isRunningTask(workerId, taskId);
  }

  /** Gives up one pass's hold of its task's org lock; whether it was the last (the lock is then released). */
  private releaseHold(taskId: string): boolean {
    const holds = (this.lockHolds.get(taskId) ?? 1) - 1;
    if (holds > 0) this.lockHolds.set(taskId, holds);
    else this.lockHolds.delete(taskId);
    return holds <= 0;
  }

  /** Remembers the phase a task waits in; whether it changed (a new waiting event is written only then). */
  private noteWaitPhase(taskId: string, phase: string): boolean {
    const changed = this.lastWaitPhase.get(taskId) !== phase;
    // Re-inserted, so the map's order is by last use: a task that stopped waiting here (it ran on another
    // worker, or was cancelled) is forgotten once enough others have waited since.
    this.lastWaitPhase.delete(taskId);
    this.lastWaitPhase.set(taskId, phase);
    if (this.lastWaitPhase.size > maxRememberedWaits) this.lastWaitPhase.delete(this.lastWaitPhase.keys().next().value!);
    return changed;
  }

  /** Puts the job back for `delayMs` (lockPollMs by default) without spending one of its attempts. */
  private lookAgainLater(job: Job<TaskJobData>, token: string | undefined, delayMs = this.options.lockPollMs): Promise<never> {
    return delayJob(job, token, delayMs);
  }

  /**
   * Takes a child first (a ready spare, or a fork that boots while the claim runs), registers its session so a
   * cancel that arrives the moment the task is RUNNING finds it, then claims the task for this job, recording
   * the child's pid in the same statement. A child whose task could not be claimed never gets a request.
   */
  private async claimAndRun(job: Job<TaskJobData>, progress: { claimed: boolean }): Promise<unknown> {
    const { lifecycle } = this.deps;
    const taskId = job.data.taskId;
    if (this.running.has(taskId)) return busy;
    // A job the worker was still sorting out (waiting to see whether another worker is alive, say) when the
    // shutdown's drain time ran out: a run started now would be aborted at once, and spend an attempt.
    if (this.shuttingDown) return closing;
    const child = this.deps.launcher.take();
    // A fork the system refused (EAGAIN, EMFILE: too many processes or open files) has no pid: the task is not
    // claimed, so no attempt is spent, and the job is looked at again shortly like any run that could not start.
    if (child.process.pid === undefined) throw new Error('The system refused to start a task process (too many processes or open files)');
    // The deployment this run follows (an earlier attempt's, or the one its operation reports starting).
    const run: RunState = { deployId: undefined };
    // The task as this run claimed it; the child reports only after its request, so after the claim.
    let claimed: (Task & { org: OrgRef }) | null = null;
    const session = new ChildSession(
      child,
      {
        onProgress: async (percent, phase, details) => {
          if (typeof details?.deployId === 'string') run.deployId = details.deployId;
          await lifecycle.progress(taskId, percent, phase, details, claimed ? runOf(claimed) : undefined);
          // BullMQ's own view (dashboards such as Bull Board); best effort.
          await job.updateProgress({ percent, ...(phase ? { phase } : {}) }).catch(() => undefined);
        },
        onLog: (level, message) => lifecycle.log(taskId, level, message, claimed ? runOf(claimed) : undefined),
        redeem: async (token) => (this.deps.redeemIpcGrant ? this.deps.redeemIpcGrant(token) : null),
        // Asked for only after the run's request, so after the claim.
        issueGrant: () => this.issueGrant(claimed!, claimed!.org),
        // Whether its kind is one of the protocol's, nothing of its own: a malformed report could hold anything the
        // operation had, credentials included.
        onDropped: (kind) => this.deps.logger.warn({ taskId, kind: kind !== undefined && childMessageKinds.has(kind) ? kind : 'unknown' }, 'dropped a message from a task child that is not the protocol\'s'),
      },
      this.options.killGraceMs,
    );
    this.running.set(taskId, session);
    try {
      claimed = await lifecycle.claim(taskId, job.id!, this.options.workerId, child.process.pid);
      progress.claimed = claimed !== null;
      // Cancelled while it waited for this retry (TaskService.cancel): this run only cancels what an earlier
      // attempt started in Salesforce.
      if (claimed?.cancelRequestedAt) session.markCancelOnly();
    } finally {
      if (!claimed) {
        this.running.delete(taskId);
        session.discard();
      }
    }
    if (!claimed) return notClaimed;
    const startedAt = Date.now();
    try {
      const settled = await this.settle(claimed, await this.runChild(claimed, claimed.org, session, run), run, session.onlyCancels);
      this.logRunEnd(claimed, startedAt, settled);
      return settled;
    } catch (error) {
      this.logRunEnd(claimed, startedAt, error);
      throw error;
    } finally {
      this.running.delete(taskId);
    }
  }

  /**
   * One line a run, so that a worker's log tells how each run ended and how long it took: its status and code
   * at info (a failure's message stays on the task: it may quote the org's data), or, at warn, that its end could
   * not be recorded (Postgres did not answer; the job's retry or the reconciler settles the task).
   */
  private logRunEnd(task: Task & { org: OrgRef }, startedAt: number, ended: unknown): void {
    const { logger } = this.deps;
    const run = { taskId: task.id, type: task.type, org: task.org.alias, attempt: task.attempts, durationMs: Date.now() - startedAt };
    if (ended instanceof RetryLater) logger.info({ ...run, status: 'QUEUED', code: ended.message }, 'task run ended; a retry follows');
    else if (ended instanceof UnrecoverableError) logger.info({ ...run, status: 'FAILED', code: ended.message }, 'task run ended');
    else if (ended instanceof Error) logger.warn({ ...run, err: ended.name, code: (ended as { code?: unknown }).code }, 'task run ended; recording how failed');
    else logger.info({ ...run, status: (ended as { status?: string } | undefined)?.status }, 'task run ended');
  }

  /** The drain time of a shutdown is up: aborts every run, and every run that starts from now on (they are retried). */
  abortAll(): void {
    this.shuttingDown = true;
    for (const session of this.running.values()) session.abort('shutdown');
  }

  private async runChild(task: Task, org: OrgRef, session: ChildSession, run: RunState): Promise<ChildOutcome> {
    const prepared = await this.prepare(task, org, session);
    if ('kind' in prepared) {
      // Nothing to run: the child never gets a request.
      session.discard();
      return prepared;
    }
    run.deployId = prepared.resume?.deployId;
    const timeoutMs = task.timeoutMs ?? defaultTimeoutMsFor[task.type];
    const timer = setTimeout(() => session.abort('timeout'), timeoutMs);
    try {
      return await session.run(prepared);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The child's run request: an earlier attempt's deployment, the files and a credential grant (or `ask`); or why not. */
  private async prepare(task: Task, org: OrgRef, session: ChildSession): Promise<RunRequest | ChildOutcome> {
    const { secrets } = this.deps;
    // Shut down or timed out while the claim ran: no grant is issued and the child gets no request. A cancel is
    // looked at below: a run that follows an earlier attempt's deployment then only cancels that deployment
    // (ChildSession.run), as it would had the cancel come before the claim.
    const aborted = session.abortedFor;
    if (aborted && aborted !== 'cancelled') return { kind: 'aborted', reason: aborted };
    let deployId;
    try {
      deployId = await this.deps.effects.startedDeployment(task);
    } catch (error) {
      // Not knowing whether a deployment is already running must not start a second one: try again later.
      return this.unreadable(task, error, 'the task\'s earlier attempts');
    }
    // Cancelled while it waited (or since its claim), with no deployment of an earlier attempt to cancel: nothing to run.
    if ((task.cancelRequestedAt || session.abortedFor === 'cancelled') && deployId === undefined) return { kind: 'aborted', reason: 'cancelled' };
    let files;
    try {
      files = await this.deps.effects.files(task, deployId !== undefined);
    } catch (error) {
      // An artifact that is gone stays gone; a database that did not answer may answer the retry.
      if (error instanceof NotFoundError) return { kind: 'failed', code: error.code, message: error.message, retryable: false };
      return this.unreadable(task, error, 'the task\'s artifact');
    }
    // A Vault grant is issued when the child asks for it: a run that never needs credentials (it failed first, was
    // aborted, or its operation needs none) leaves no live wrapping token behind. A built-in grant costs nothing
    // to issue (a token in this process, the secret is read when it is redeemed) and comes with the request.
    const grant = secrets.kind === 'vault' ? ({ kind: 'ask' } as const) : await this.issueGrant(task, org);
    if ('error' in grant) return { kind: 'failed', code: 'CREDENTIALS_UNAVAILABLE', message: grant.error, retryable: grant.retryable };
    return {
      taskId: task.id,
      type: task.type,
      attempt: task.attempts,
      maxAttempts: task.maxAttempts,
      params: task.input,
      org: { alias: org.alias, instanceUrl: org.instanceUrl },
      grant,
      files,
      ...(deployId !== undefined ? { resume: { deployId, ...(task.cancelRequestedAt ? { cancel: true as const } : {}) } } : {}),
    };
  }

  /** A run that could not be prepared because Postgres did not answer: retried, and the cause only in the log. */
  private unreadable(task: Task, error: unknown, what: string): FailedReport {
    this.deps.logger.warn({ taskId: task.id, err: (error as Error).message }, `reading ${what} failed`);
    return { kind: 'failed', code: 'WORKER_ERROR', message: `The worker could not read ${what}`, retryable: true };
  }

  /** The run's grant, or why the store did not issue one. */
  private async issueGrant(task: Task, org: OrgRef): Promise<CredentialGrant | GrantRefusal> {
    try {
      return await this.deps.secrets.issueGrant(org.secretRef, this.options.grantTtlSeconds);
    } catch (error) {
      this.deps.logger.warn({ taskId: task.id, err: (error as Error).message }, 'issuing a credential grant failed');
      // Vault answered that the secret is not there: no attempt will find it until the credentials are written again.
      if ((error as { status?: unknown }).status === 404) {
        return { error: 'The org\'s credentials are not in the secret store: rotate them (rotateOrgCredentials)', retryable: false };
      }
      return { error: 'The secret store did not issue the org\'s credentials', retryable: true };
    }
  }

  /** `cancelOnly`: the run only cancelled an earlier attempt's deployment (ChildSession.markCancelOnly). */
  private async settle(task: Task, outcome: ChildOutcome, run: RunState, cancelOnly: boolean): Promise<unknown> {
    const { lifecycle, logger } = this.deps;
    if (cancelOnly) {
      const settled = await this.settleCancelOnly(task, outcome);
      if (settled) return settled;
    }
    switch (outcome.kind) {
      case 'succeeded':
        await lifecycle.succeed(task.id, await this.deps.effects.succeeded(task, outcome.result), runOf(task));
        return { status: 'SUCCEEDED' };
      case 'aborted': {
        // The work had ended on its own before the abort took (a deployment that had already failed): that is
        // how the task ended, details included, whatever stopped it.
        if (outcome.report && endedOnItsOwn(task, outcome.report)) return this.retryOrFail(task, { ...outcome.report, retryable: false });
        // Shut down on its last attempt: no retry follows, so a cancel that came meanwhile is how the task ends.
        // Postgres is asked, since the worker stops polling for cancels when its shutdown starts.
        const lastAttempt = task.attempts >= task.maxAttempts;
        // Every way of ending here but a shutdown with attempts left (whose retry follows the deployment) has the
        // child cancel its deployment, and Salesforce may not have confirmed it.
        if (outcome.reason !== 'shutdown' || lastAttempt) await this.warnIfDeploymentLeftRunning(task.id, run.deployId, outcome.report);
        if (outcome.reason === 'cancelled' || (outcome.reason === 'shutdown' && lastAttempt && (await this.cancelRequested(task.id)))) {
          await lifecycle.cancelled(task.id, runOf(task));
          return { status: 'CANCELLED' };
        }
        if (outcome.reason === 'timeout') {
          const limit = task.timeoutMs ?? defaultTimeoutMsFor[task.type];
          await this.fail(task, { code: 'TIMEOUT', message: `The task ran longer than its ${limit} ms limit` });
          throw new UnrecoverableError('TIMEOUT');
        }
        return this.retryOrFail(task, { code: 'WORKER_SHUTDOWN', message: 'The worker shut down while the task ran', retryable: true });
      }
      case 'failed':
        return this.retryOrFail(task, outcome);
      case 'not-started':
        logger.warn({ taskId: task.id, code: outcome.code }, 'the system refused to start a task process');
        return this.retryOrFail(task, notStartedFailure(outcome.code));
      case 'crashed':
        logger.warn({ taskId: task.id, exitCode: outcome.exitCode, signal: outcome.signal }, 'task child exited without reporting');
        return this.retryOrFail(task, {
          code: 'CHILD_CRASHED',
          message: `The task's process exited unexpectedly (code ${outcome.exitCode}, signal ${outcome.signal})`,
          retryable: true,
        });
    }
  }

  /**
   * A run that only cancelled the deployment an earlier attempt started (TaskService.cancel). Cancelled, it ends
   * CANCELLED. A deployment that had already ended on its own is reported as such (null: the usual settling).
   * A cancellation that could not be made is tried again by the next attempt while one remains; after that the
   * task ends CANCELLED with a warning that Salesforce may still be deploying.
   */
  private async settleCancelOnly(task: Task, outcome: ChildOutcome): Promise<unknown> {
    const { lifecycle } = this.deps;
    const cancelled = (outcome.kind === 'failed' && outcome.code === 'CANCELLED') || (outcome.kind === 'aborted' && outcome.reason === 'cancelled');
    if (outcome.kind === 'succeeded' || (outcome.kind === 'failed' && endedOnItsOwn(task, outcome))) return null;
    if (!cancelled) {
      const retryable = outcome.kind === 'crashed' || outcome.kind === 'not-started' || (outcome.kind === 'aborted' && outcome.reason === 'shutdown') || (outcome.kind === 'failed' && outcome.retryable);
      if (retryable && task.attempts < task.maxAttempts) return null; // requeued; the next run cancels
      const why =
        outcome.kind === 'failed' ? `${outcome.code}: ${outcome.message}` : outcome.kind === 'crashed' ? 'the process exited' : outcome.kind === 'not-started' ? notStartedFailure(outcome.code).message : outcome.reason;
      if (outcome.kind === 'failed') await this.deps.effects.failed(task, outcome).catch(() => undefined); // e.g. marks the org AUTH_FAILED
      await this.logDeploymentMayRun(task.id, why);
    }
    await lifecycle.cancelled(task.id, runOf(task));
    return { status: 'CANCELLED' };
  }

  /** Whether a cancel of the task is on record (it may have come after this run's claim). */
  private async cancelRequested(taskId: string): Promise<boolean> {
    const requested = await this.deps.lifecycle.cancelRequested([taskId]).catch((error: unknown) => {
      this.deps.logger.warn({ taskId, err: (error as Error).message }, 'reading whether a cancel came during the shutdown failed');
      return [];
    });
    return requested.length > 0;
  }

  /**
   * A deployment task stopped by a cancel, a timeout or a last-attempt shutdown whose child did not report its
   * deployment Canceled (the child was stopped first, or Salesforce did not confirm in time): if the run had
   * started or followed a deployment, say it may still run.
   */
  private async warnIfDeploymentLeftRunning(taskId: string, deployId: string | undefined, report: FailedReport | undefined): Promise<void> {
    if (deployId === undefined || report?.code === 'CANCELLED') return;
    await this.logDeploymentMayRun(taskId, report ? `${report.code}: ${report.message}` : `its process was stopped before Salesforce confirmed the cancellation of ${deployId}`);
  }

  private logDeploymentMayRun(taskId: string, why: string): Promise<void> {
    return this.deps.lifecycle.log(taskId, 'warn', `The deployment could not be cancelled in Salesforce and may still be running (${why})`);
  }

  private async retryOrFail(task: Task, failure: TaskFailure & { retryable: boolean }): Promise<never> {
    if (failure.retryable && task.attempts < task.maxAttempts) {
      await this.deps.lifecycle.requeue(task.id, failure, backoffFor(task, task.attempts), { run: runOf(task) });
      // Any plain error makes BullMQ schedule the next attempt after the backoff.
      throw new RetryLater(failure.code);
    }
    await this.fail(task, failure);
    throw new UnrecoverableError(failure.code);
  }

  private async fail(task: Task, failure: TaskFailure): Promise<void> {
    // The org first (as for a success), so whoever sees the task FAILED also sees the org it marked.
    await this.deps.effects.failed(task, failure).catch((error) => this.deps.logger.warn({ err: error, taskId: task.id }, 'applying a failure to the org failed'));
    await this.deps.lifecycle.fail(task.id, failure, ['RUNNING'], { run: runOf(task) });
  }
}
