// The domain services of one Switchyard process, built once and shared by HTTP, WebSocket and CLI callers.
import type { PrismaClient } from './db/prisma.js';
import { AuditService } from './domain/audit/audit-service.js';
import { TokenService } from './domain/auth/token-service.js';
import { OrgService } from './domain/orgs/org-service.js';
import { TaskService } from './domain/tasks/task-service.js';
import type { TaskQueues } from './queues/task-queues.js';
import type { SecretStore } from './secrets/secret-store.js';

export interface Services {
  prisma: PrismaClient;
  secrets: SecretStore;
  queues: TaskQueues;
  audit: AuditService;
  tokens: TokenService;
  orgs: OrgService;
  tasks: TaskService;
}

export function createServices(deps: { prisma: PrismaClient; secrets: SecretStore; queues: TaskQueues }): Services {
  const audit = new AuditService(deps.prisma);
  return {
    ...deps,
    audit,
    tokens: new TokenService(deps.prisma, audit),
    orgs: new OrgService(deps.prisma, deps.secrets, audit),
    tasks: new TaskService(deps.prisma, deps.queues),
  };
}
