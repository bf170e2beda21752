// One operation in one child process, seen from the worker: send the request, relay the child's reports in
// order, answer its credential redemption, and escalate an abort (ask, then SIGTERM, then SIGKILL).
import { getSystemErrorName } from 'node:util';
import type { CredentialGrant, SecretValue } from '../secrets/secret-store.js';
import { UnreadableSecretError } from '../secrets/builtin-store.js';
import type { LaunchedChild } from './child-launcher.js';
import { messageKind, parseChildMessage } from './child-message.js';
import type { AbortReason, ChildMessage, LogLevel, ParentMessage, RunRequest } from './ipc-protocol.js';
import { ReportQueue, type Report } from './report-queue.js';

export type ChildOutcome =
  | { kind: 'succeeded'; result: unknown }
  | { kind: 'failed'; code: string; message: string; retryable: boolean; details?: unknown }
  /** `report`: the failure the child reported anyway, e.g. that its work had ended on its own before the abort. */
  | { kind: 'aborted'; reason: AbortReason; report?: FailedReport }
  | { kind: 'crashed'; exitCode: number | null; signal: string | null }
  /** The system refused to fork the child (`code`: EAGAIN, EMFILE, ENFILE): it never ran. */
  | { kind: 'not-started'; code: string };

export type FailedReport = Extract<ChildOutcome, { kind: 'failed' }>;

export interface SessionHooks {
  onProgress(percent: number, phase: string | undefined, details: Record<string, unknown> | undefined): Promise<void>;
  onLog(level: LogLevel, message: string): Promise<void>;
  /** Redeems an IPC grant token; null when it is spent, expired or unknown. */
  redeem(token: string): Promise<SecretValue | null>;
  /** Issues the run's grant when its child asks (a request with `grant: ask`), or says why not. */
  issueGrant(): Promise<CredentialGrant | GrantRefusal>;
  /** A message the worker does not accept was dropped; `kind` is its `t`, if it has one (never its content). */
  onDropped?(kind: string | undefined): void;
}

/** Why a grant was not issued, and whether a later attempt may get one. */
export interface GrantRefusal {
  error: string;
  retryable: boolean;
}

export class ChildSession {
  private abortReason: AbortReason | null = null;
  /** This run only cancels what an earlier attempt started (its request says so): a cancel has nothing to stop. */
  private cancelOnly = false;
  private report: ChildOutcome | null = null;
  /** The child's reports, handled in order and bounded (report-queue.ts). */
  private readonly reports = new ReportQueue((report) => this.handle(report));
  /** The redemptions under way: answered apart from the reports (see run). */
  private redeeming: Promise<void> = Promise.resolve();
  /** The IPC grant this child's request carries: the only token it may redeem. */
  private grantToken: string | null = null;
  /** Whether the request leaves the grant to be asked for, and whether it has been. */
  private grantOnRequest = false;
  private grantAsked = false;
  /** Whether the run follows a deployment an earlier attempt started (it needs credentials even to cancel it). */
  private resumes = false;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly child: LaunchedChild,
    private readonly hooks: SessionHooks,
    private readonly graceMs: number,
  ) {}

  /** Whether the run only cancels an earlier attempt's deployment (markCancelOnly). */
  get onlyCancels(): boolean {
    return this.cancelOnly;
  }

  /** Why the session was aborted, if it was. */
  get abortedFor(): AbortReason | null {
    return this.abortReason;
  }

  get pid(): number | undefined {
    return this.child.process.pid;
  }

  async run(request: RunRequest): Promise<ChildOutcome> {
    const proc = this.child.process;
    // Messages can still arrive after 'exit'; the IPC channel's 'disconnect' comes after the last of them.
    const channelClosed = new Promise<void>((resolve) => (proc.connected ? proc.once('disconnect', () => resolve()) : resolve()));
    // A fork the system refused never exits: its 'error' (or, once that has passed, the exit code it left) says so.
    let notStarted: string | undefined;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      if (proc.pid === undefined && proc.exitCode !== null) notStarted = getSystemErrorName(proc.exitCode);
      if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
      else {
        proc.once('exit', (code, signal) => resolve({ code, signal }));
        proc.once('error', (error: NodeJS.ErrnoException) => {
          if (proc.pid !== undefined) return;
          notStarted = error.code ?? error.message;
          resolve({ code: proc.exitCode, signal: null });
        });
      }
    }).then(async (status) => {
      // Nothing ran, so nothing more can come over the channel: after some refusals (EAGAIN) Node has set one
      // up, and no 'disconnect' need ever come.
      if (notStarted) {
        if (proc.connected) proc.disconnect();
        return status;
      }
      await channelClosed;
      return status;
    });
    this.grantToken = request.grant.kind === 'ipc' ? request.grant.token : null;
    proc.on('message', (received: unknown) => {
      // Anything but a ChildMessage is dropped (child-message.ts).
      const message = parseChildMessage(received);
      if (!message) {
        this.hooks.onDropped?.(messageKind(received));
        return;
      }
      // A redemption (or a grant asked for) is answered at once, not after the reports before it: a progress report
      // whose write waits (Postgres or Redis slow to answer) must not hold the operation's credentials back until
      // its grant expires.
      if (message.t === 'redeem' || message.t === 'grant') {
        const answer = message.t === 'redeem' ? this.answerRedeem(message.token) : this.answerGrant();
        this.redeeming = Promise.all([this.redeeming, answer.catch(() => undefined)]).then(() => undefined);
      } else if (message.t === 'done' || message.t === 'failed') this.outcome(message);
      else if (message.t !== 'ready') this.reports.push(message);
    });
    try {
      await this.child.ready;
      // Aborted before it started (a cancel or shutdown while the task was being claimed or prepared): the
      // operation never gets its request, so nothing starts in the org only to be killed.
      // A cancel that came after the claim, in a run that follows an earlier attempt's deployment: the run only
      // cancels that deployment, as a run claimed after the cancel would (markCancelOnly).
      if (this.abortReason === 'cancelled' && request.resume && !request.resume.cancel) {
        this.markCancelOnly();
        request = { ...request, resume: { ...request.resume, cancel: true } };
      }
      if (this.abortReason) this.discard();
      else {
        // Only a child that got its request may ask for its grant.
        this.grantOnRequest = request.grant.kind === 'ask';
        this.resumes = request.resume !== undefined;
        this.send({ t: 'run', request });
      }
    } catch {
      // The child died before it was ready; `exited` reports how.
    }
    const { code, signal } = await exited;
    this.timers.forEach(clearTimeout);
    await Promise.all([this.reports.idle(), this.redeeming]);
    // Stopped meanwhile, it is aborted (a cancel ends it CANCELLED), as one that started would be.
    if (notStarted && !this.abortReason) return { kind: 'not-started', code: notStarted };
    if (this.report?.kind === 'succeeded') return this.report;
    // A run that only cancels reports how the cancellation went, even if a shutdown or timeout came meanwhile.
    if (this.cancelOnly && this.report) return this.report;
    if (this.abortReason) return { kind: 'aborted', reason: this.abortReason, ...(this.report?.kind === 'failed' ? { report: this.report } : {}) };
    return this.report ?? { kind: 'crashed', exitCode: code, signal };
  }

  /**
   * Stops a child that was never sent a request (its task could not be claimed or prepared). It is not
   * handed out again: it may already have been told to abort.
   */
  discard(): void {
    const proc = this.child.process;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  }

  /**
   * Marks a run that only cancels (TaskService.cancel of a deployment task waiting for its retry): cancel
   * requests for its task are ignored, since its request already tells the child to cancel; a timeout or a
   * shutdown still stops it.
   */
  markCancelOnly(): void {
    this.cancelOnly = true;
    // A cancel request that reached this session first would keep the run from starting at all, and its
    // SIGTERM/SIGKILL could cut the cancellation short; the 'abort' it sent is harmless (the child starts out
    // aborted anyway).
    if (this.abortReason === 'cancelled') {
      this.abortReason = null;
      this.timers.forEach(clearTimeout);
      this.timers = [];
    }
  }

  /** Asks the operation to stop; if it does not exit in time it gets SIGTERM, then SIGKILL. */
  abort(reason: AbortReason): void {
    if (this.abortReason || (reason === 'cancelled' && this.cancelOnly)) return;
    this.abortReason = reason;
    const proc = this.child.process;
    this.send({ t: 'abort', reason });
    this.timers.push(
      setTimeout(() => proc.kill('SIGTERM'), this.graceMs),
      setTimeout(() => proc.kill('SIGKILL'), this.graceMs * 2),
    );
  }

  /**
   * Issues the run's grant to a child that asks for it, once. Not to a run being stopped (cancelled, timed out,
   * shut down): it would only leave a live wrapping token behind. Except a run that follows an earlier attempt's
   * deployment: it needs credentials to cancel that deployment in Salesforce.
   */
  private async answerGrant(): Promise<void> {
    const refusal = !this.grantOnRequest
      ? 'This run\'s grant came with its request, or it has no request'
      : this.grantAsked
        ? 'This run\'s grant was issued already'
        : this.abortReason && !this.resumes
          ? 'The run is being stopped'
          : null;
    if (refusal) {
      this.send({ t: 'grant', grant: null, error: refusal, retryable: false });
      return;
    }
    this.grantAsked = true;
    let issued: CredentialGrant | GrantRefusal;
    try {
      issued = await this.hooks.issueGrant();
    } catch {
      issued = { error: 'The secret store did not issue the org\'s credentials', retryable: true }; // the child always gets an answer
    }
    this.send('kind' in issued ? { t: 'grant', grant: issued } : { t: 'grant', grant: null, ...issued });
  }

  /** Answers the child's redemption of its grant: the secret, or why not. */
  private async answerRedeem(token: string): Promise<void> {
    // A child redeems the grant of its own request, not another child's (a token it could only have read elsewhere).
    if (token !== this.grantToken) {
      this.send({ t: 'credentials', value: null, error: 'The credential grant is not this process\'s' });
      return;
    }
    let value: SecretValue | null;
    try {
      value = await this.hooks.redeem(token);
    } catch (error) {
      // A secret this store's key cannot open stays so; a database that did not answer may answer the retry.
      const permanent = error instanceof UnreadableSecretError;
      this.send({ t: 'credentials', value: null, error: permanent ? error.message : 'The secret store could not be read', retryable: !permanent });
      return;
    }
    this.send(value ? { t: 'credentials', value } : { t: 'credentials', value: null, error: 'The credential grant is spent, expired or unknown' });
  }

  private send(message: ParentMessage): void {
    if (this.child.process.connected) this.child.process.send(message);
  }

  private handle(message: Report): Promise<void> {
    return message.t === 'progress' ? this.hooks.onProgress(message.percent, message.phase, message.details) : this.hooks.onLog(message.level, message.message);
  }

  /** The child's outcome: the last one it sends counts (read once it has exited and its reports are written). */
  private outcome(message: Extract<ChildMessage, { t: 'done' | 'failed' }>): void {
    this.report =
      message.t === 'done'
        ? { kind: 'succeeded', result: message.result }
        : { kind: 'failed', code: message.code, message: message.message, retryable: message.retryable, details: message.details };
  }
}
