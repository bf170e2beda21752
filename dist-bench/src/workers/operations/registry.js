export const operationLoaders = {
    DIAGNOSTIC: () => import('./diagnostic.js'),
    ORG_CHECK: () => import('./unavailable.js'),
    RETRIEVE: () => import('./unavailable.js'),
    VALIDATE: () => import('./unavailable.js'),
    DEPLOY: () => import('./unavailable.js'),
    QUICK_DEPLOY: () => import('./unavailable.js'),
};
