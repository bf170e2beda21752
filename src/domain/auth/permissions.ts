// What each role may do. The GraphQL auth scopes and the CLI both read this table, so a role means the same
// thing everywhere.
import type { Role } from '../../generated/prisma/enums.js';

export type Permission =
  | 'read'
  | 'submitTasks'
  | 'cancelTasks'
  | 'retryTasks'
  | 'manageOrgs'
  | 'manageTokens'
  | 'readAudit';

const grants: Record<Role, readonly Permission[]> = {
  OWNER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks', 'manageOrgs', 'manageTokens', 'readAudit'],
  MEMBER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks'],
  VIEWER: ['read'],
  APPLICATION: ['read', 'submitTasks', 'cancelTasks'],
};

export function can(role: Role, permission: Permission): boolean {
  return grants[role].includes(permission);
}
