// DEPLOY and VALIDATE (check-only): deploys an artifact's zip with the Metadata API and follows it.
import { readFile } from 'node:fs/promises';
import type { Connection } from 'jsforce';
import type { TaskParams } from '../../domain/tasks/task-params.js';
import { OperationError, type Operation, type OperationContext } from './operation.js';
import { connect } from './salesforce/connect.js';
import { followDeployment } from './salesforce/deployment.js';
import { toOperationError } from './salesforce/errors.js';

type Params = TaskParams<'DEPLOY'>;

/** The zip to deploy, from the artifact store; a missing one fails the task before anything reaches Salesforce. */
async function readSource(ctx: OperationContext<Params>): Promise<Buffer> {
  if (!ctx.files.sourceZip) throw new OperationError('INVALID_PACKAGE', 'The deployment has no source artifact', false);
  return readFile(ctx.files.sourceZip).catch(() => {
    throw new OperationError('INVALID_PACKAGE', 'The source artifact is missing from the artifact store', false);
  });
}

/** Starts the deployment; a zip or package Salesforce refuses is INVALID_PACKAGE. */
async function startDeployment(conn: Connection, zip: Buffer, params: Params, checkOnly: boolean): Promise<string> {
  try {
    const started = await conn.metadata.deploy(zip, {
      checkOnly,
      testLevel: params.testLevel,
      ...(params.runTests.length ? { runTests: params.runTests } : {}),
      rollbackOnError: params.rollbackOnError,
      ignoreWarnings: params.ignoreWarnings,
      singlePackage: params.singlePackage,
    });
    return (started as unknown as { id: string }).id;
  } catch (error) {
    throw deploymentStartFailure(error);
  }
}

/**
 * Why a deployment could not start: a zip or package Salesforce refused is INVALID_PACKAGE; anything else keeps
 * its own code (an unreachable org whose host name happens to hold "zip" is still retried).
 */
export function deploymentStartFailure(error: unknown): OperationError {
  const failure = toOperationError(error, 'starting the deployment');
  const refused = failure.code === 'SALESFORCE_ERROR' && /zip|package/i.test((error as { message?: string } | null)?.message ?? '');
  return refused ? new OperationError('INVALID_PACKAGE', failure.message, false) : failure;
}

export async function runDeployment(ctx: OperationContext<Params>, checkOnly: boolean): Promise<unknown> {
  const { params, resume } = ctx;
  // A retry follows the deployment an earlier attempt started: only a new deployment needs the zip.
  const zip = resume ? null : await readSource(ctx);
  ctx.progress(2, 'authenticating');
  const { conn } = await connect(ctx, ['metadata']);
  let deployId: string;
  if (resume) {
    deployId = resume.deployId;
    ctx.log(`Following ${checkOnly ? 'validation' : 'deployment'} ${deployId}, started by an earlier attempt`);
  } else {
    deployId = await startDeployment(conn, zip!, params, checkOnly);
    ctx.log(`${checkOnly ? 'Validation' : 'Deployment'} ${deployId} started`);
    // Recorded before the first poll: a retry of this task follows this deployment (TaskEffects.startedDeployment).
    ctx.progress(5, 'started', { deployId });
  }
  return followDeployment(conn, deployId, ctx, params.pollIntervalMs);
}

const deploy: Operation<Params> = { run: (ctx) => runDeployment(ctx, false) };
export default deploy;
