// QUICK_DEPLOY: promotes a recent successful validation (deployRecentValidation) and follows the deployment.
import type { TaskParams } from '../../domain/tasks/task-params.js';
import { OperationError, type Operation } from './operation.js';
import { connect } from './salesforce/connect.js';
import { followDeployment } from './salesforce/deployment.js';
import { toOperationError } from './salesforce/errors.js';

const quickDeploy: Operation<TaskParams<'QUICK_DEPLOY'>> = {
  async run(ctx) {
    const validationId = ctx.params.deployId;
    if (!validationId) throw new OperationError('INVALID_PACKAGE', 'No validated deploy id to promote', false);
    ctx.progress(2, 'authenticating');
    const { conn } = await connect(ctx, ['metadata']);
    let deployId: string;
    if (ctx.resume) {
      // A validation can be quick-deployed once: an earlier attempt's deployment is the one to follow.
      deployId = ctx.resume.deployId;
      ctx.log(`Following quick deploy ${deployId} of validation ${validationId}, started by an earlier attempt`);
    } else {
      try {
        deployId = await conn.metadata.deployRecentValidation({ id: validationId, rest: false });
      } catch (error) {
        throw toOperationError(error, `quick-deploying validation ${validationId}`);
      }
      ctx.log(`Quick deploy ${deployId} of validation ${validationId} started`);
      ctx.progress(5, 'started', { deployId }); // before the first poll, for a retry to follow
    }
    return { validationId, ...(await followDeployment(conn, deployId, ctx, ctx.params.pollIntervalMs)) };
  },
};

export default quickDeploy;
