const grants = {
    OWNER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks', 'manageOrgs', 'manageTokens', 'readAudit'],
    MEMBER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks'],
    VIEWER: ['read'],
    APPLICATION: ['read', 'submitTasks', 'cancelTasks'],
};
export function can(role, permission) {
    return grants[role].includes(permission);
}
