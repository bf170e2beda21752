// Follows a Metadata API deployment (deploy, check-only validation, or a quick deploy of a validation) to
// its end: polls checkDeployStatus with details, reports components and tests as progress, and on
// cancellation asks Salesforce to cancel and waits (bounded) for it to say Canceled.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from 'jsforce';
import { isShutdown, OperationError, type OperationContext } from '../operation.js';
import { toOperationError } from './errors.js';
import { pollStatus } from './poll-status.js';

/** How long a cancelled deployment waits for Salesforce to confirm; kept below the worker's kill grace. */
const cancelWaitMs = 20_000;

function asArray<T>(value: T | T[] | undefined | null): T[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

const num = (value: unknown): number => (value === undefined || value === null || value === '' ? 0 : Number(value));
const bool = (value: unknown): boolean => value === true || value === 'true';

interface RawDeployResult {
  id: string;
  status: string;
  done: unknown;
  success: unknown;
  checkOnly?: unknown;
  stateDetail?: string;
  errorMessage?: string;
  numberComponentsTotal?: unknown;
  numberComponentsDeployed?: unknown;
  numberComponentErrors?: unknown;
  numberTestsTotal?: unknown;
  numberTestsCompleted?: unknown;
  numberTestErrors?: unknown;
  details?: {
    componentFailures?: RawComponentFailure | RawComponentFailure[];
    runTestResult?: {
      numTestsRun?: unknown;
      numFailures?: unknown;
      failures?: RawTestFailure | RawTestFailure[];
      codeCoverageWarnings?: RawCoverageWarning | RawCoverageWarning[];
    };
  };
}

interface RawComponentFailure {
  fileName?: string;
  fullName?: string;
  componentType?: string;
  lineNumber?: unknown;
  columnNumber?: unknown;
  problem?: string;
  problemType?: string;
}

interface RawTestFailure {
  name?: string;
  methodName?: string;
  message?: string;
  stackTrace?: string;
}

interface RawCoverageWarning {
  name?: string;
  message?: string;
}

export interface DeploymentSummary {
  deployId: string;
  status: string;
  success: boolean;
  checkOnly: boolean;
  components: { total: number; deployed: number; errors: number };
  tests: { total: number; completed: number; errors: number };
  componentFailures: Array<{ file: string | null; fullName: string | null; type: string | null; line: number | null; column: number | null; problem: string; problemType: string | null }>;
  testFailures: Array<{ name: string | null; method: string | null; message: string; stackTrace: string | null }>;
  coverageWarnings: Array<{ name: string | null; message: string }>;
  stateDetail: string | null;
  errorMessage: string | null;
}

export function summarise(raw: RawDeployResult): DeploymentSummary {
  const tests = raw.details?.runTestResult;
  return {
    deployId: raw.id,
    status: raw.status,
    success: bool(raw.success),
    checkOnly: bool(raw.checkOnly),
    components: { total: num(raw.numberComponentsTotal), deployed: num(raw.numberComponentsDeployed), errors: num(raw.numberComponentErrors) },
    tests: { total: num(raw.numberTestsTotal), completed: num(raw.numberTestsCompleted), errors: num(raw.numberTestErrors) },
    componentFailures: asArray(raw.details?.componentFailures).map((f) => ({
      file: f.fileName ?? null,
      fullName: f.fullName ?? null,
      type: f.componentType ?? null,
      line: f.lineNumber === undefined ? null : num(f.lineNumber),
      column: f.columnNumber === undefined ? null : num(f.columnNumber),
      problem: f.problem ?? '',
      problemType: f.problemType ?? null,
    })),
    testFailures: asArray(tests?.failures).map((f) => ({ name: f.name ?? null, method: f.methodName ?? null, message: f.message ?? '', stackTrace: f.stackTrace ?? null })),
    coverageWarnings: asArray(tests?.codeCoverageWarnings).map((w) => ({ name: w.name ?? null, message: w.message ?? '' })),
    stateDetail: raw.stateDetail ?? null,
    errorMessage: raw.errorMessage ?? null,
  };
}

/** A started deployment is at least 5 % along, past the 2 % its operation reported while authenticating. */
function progressOf(summary: DeploymentSummary): number {
  const { components, tests } = summary;
  const componentShare = components.total > 0 ? components.deployed / components.total : 0;
  if (tests.total === 0) return Math.max(5, Math.min(99, Math.round(componentShare * 100)));
  return Math.max(5, Math.min(99, Math.round(componentShare * 50 + (tests.completed / tests.total) * 50)));
}

/**
 * Polls a started deployment until it ends; throws DEPLOY_FAILED (with details) or CANCELLED. A cancelled or
 * timed-out task cancels the deployment in Salesforce. A worker shutdown leaves it running for the task's retry
 * to follow (TaskEffects.startedDeployment), unless this is the last attempt: with no retry to follow it, it is
 * cancelled too.
 */
export async function followDeployment(conn: Connection, deployId: string, ctx: OperationContext, pollIntervalMs: number): Promise<DeploymentSummary> {
  let cancelling = false;
  for (;;) {
    if (isShutdown(ctx.signal) && ctx.attempt < ctx.maxAttempts) {
      ctx.log(`Stopped following deployment ${deployId}: the worker is shutting down, and a retry follows it`, 'warn');
      throw ctx.signal.reason;
    }
    if (ctx.signal.aborted && !cancelling) {
      cancelling = true;
      ctx.log(`Cancelling deployment ${deployId} in Salesforce`, 'warn');
      await conn.metadata.cancelDeploy(deployId).catch((error) => ctx.log(`cancelDeploy failed: ${toOperationError(error, 'cancelling').message}`, 'warn'));
      const deadline = Date.now() + cancelWaitMs;
      for (;;) {
        const raw = (await conn.metadata.checkDeployStatus(deployId, false).catch(() => null)) as unknown as RawDeployResult | null;
        if (raw?.status === 'Canceled') {
          throw new OperationError('CANCELLED', `Deployment ${deployId} ended ${raw.status} after cancellation`, false, summarise(raw));
        }
        if (raw && bool(raw.done)) {
          // It ended on its own before the cancellation took: report how, as if it had not been cancelled (the
          // poll below reads the details).
          ctx.log(`Deployment ${deployId} had already ended ${raw.status}: there was nothing to cancel`, 'warn');
          break;
        }
        // Retryable: a run that exists only to cancel tries again (a task's own cancel ends CANCELLED regardless).
        if (Date.now() > deadline) throw new OperationError('CANCEL_UNCONFIRMED', `Salesforce did not confirm the cancellation of ${deployId} in time`, true);
        await sleep(Math.min(pollIntervalMs, 1000));
      }
    }
    const raw = (await pollStatus(() => conn.metadata.checkDeployStatus(deployId, true), ctx, `checking deployment ${deployId}`, pollIntervalMs)) as unknown as RawDeployResult;
    const summary = summarise(raw);
    const { components, tests } = summary;
    ctx.progress(bool(raw.done) ? 100 : progressOf(summary), `${summary.status}${summary.stateDetail ? `: ${summary.stateDetail}` : ''}`, {
      deployId,
      componentsDeployed: components.deployed,
      componentsTotal: components.total,
      componentErrors: components.errors,
      testsCompleted: tests.completed,
      testsTotal: tests.total,
      testErrors: tests.errors,
    });
    if (bool(raw.done)) {
      if (summary.status === 'Canceled') throw new OperationError('CANCELLED', `Deployment ${deployId} was cancelled in Salesforce`, false, summary);
      if (!summary.success) {
        const reasons = [
          components.errors ? `${components.errors} component error(s)` : '',
          tests.errors ? `${tests.errors} test failure(s)` : '',
          summary.errorMessage ?? '',
        ].filter(Boolean);
        throw new OperationError('DEPLOY_FAILED', `Deployment ${deployId} ${summary.status}${reasons.length ? `: ${reasons.join(', ')}` : ''}`, false, summary);
      }
      return summary;
    }
    // Once cancelling, the signal is spent: polling on (a deployment that had already ended) must still wait.
    await sleep(pollIntervalMs, undefined, cancelling ? undefined : { signal: ctx.signal }).catch(() => undefined);
  }
}
