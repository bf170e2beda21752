// GraphQL enums generated from the Prisma enums, so the API and the database cannot drift apart.
import { builder } from '../builder.js';
import { OrgKind, OrgStatus, Role, TaskEventKind, TaskQueue, TaskSource, TaskStatus, TaskType, } from '../generated/prisma/enums.js';
export const OrgKindEnum = builder.enumType(OrgKind, { name: 'OrgKind' });
export const OrgStatusEnum = builder.enumType(OrgStatus, {
    name: 'OrgStatus',
    description: 'UNVERIFIED until an org check has talked to Salesforce with the stored credentials.',
});
export const TaskTypeEnum = builder.enumType(TaskType, { name: 'TaskType' });
export const TaskStatusEnum = builder.enumType(TaskStatus, {
    name: 'TaskStatus',
    description: 'SCHEDULED waits for runAt; QUEUED waits for a worker; SUCCEEDED, FAILED and CANCELLED are final.',
});
export const TaskQueueEnum = builder.enumType(TaskQueue, {
    name: 'TaskQueue',
    description: 'CRITICAL for short, urgent work such as org checks; NORMAL for deployments; BATCH for bulk retrievals.',
});
export const TaskSourceEnum = builder.enumType(TaskSource, { name: 'TaskSource' });
export const TaskEventKindEnum = builder.enumType(TaskEventKind, { name: 'TaskEventKind' });
export const RoleEnum = builder.enumType(Role, {
    name: 'Role',
    description: 'OWNER: everything. MEMBER: read, submit, cancel and retry tasks. VIEWER: read. APPLICATION (CI): read, submit and cancel tasks.',
});
