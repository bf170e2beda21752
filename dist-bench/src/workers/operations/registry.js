export const operationLoaders = {
    DIAGNOSTIC: () => import('./diagnostic.js'),
    ORG_CHECK: () => import('./org-check.js'),
    RETRIEVE: () => import('./retrieve.js'),
    VALIDATE: () => import('./validate.js'),
    DEPLOY: () => import('./deploy.js'),
    QUICK_DEPLOY: () => import('./quick-deploy.js'),
};
