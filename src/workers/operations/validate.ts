// VALIDATE: a check-only deployment. Its deploy id, once it succeeds with tests, can be quick-deployed.
import type { TaskParams } from '../../domain/tasks/task-params.js';
import { runDeployment } from './deploy.js';
import type { Operation } from './operation.js';

const validate: Operation<TaskParams<'VALIDATE'>> = { run: (ctx) => runDeployment(ctx, true) };
export default validate;
