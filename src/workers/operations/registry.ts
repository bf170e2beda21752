// Task type → operation module. Modules are imported only when a child runs that type, so a child pays
// only for what its one operation needs (jsforce, for instance, is never loaded by a diagnostic task).
import type { Operation } from './operation.js';

type Loader = () => Promise<{ default: Operation<any> }>;

export const operationLoaders: Record<string, Loader> = {
  DIAGNOSTIC: () => import('./diagnostic.js'),
  ORG_CHECK: () => import('./org-check.js'),
  RETRIEVE: () => import('./retrieve.js'),
  VALIDATE: () => import('./validate.js'),
  DEPLOY: () => import('./deploy.js'),
  QUICK_DEPLOY: () => import('./quick-deploy.js'),
};
