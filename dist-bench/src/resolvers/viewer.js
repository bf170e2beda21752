import { builder } from '../builder.js';
import { can } from '../domain/auth/permissions.js';
import { RoleEnum } from '../schema/enums.js';
import { ApiTokenNode } from '../schema/token.js';
const permissions = ['read', 'submitTasks', 'cancelTasks', 'retryTasks', 'manageOrgs', 'manageTokens', 'readAudit'];
const ViewerRef = builder.objectRef('Viewer').implement({
    description: 'Who the current token belongs to and what it may do.',
    fields: (t) => ({
        userName: t.exposeString('userName'),
        role: t.field({ type: RoleEnum, resolve: (viewer) => viewer.role }),
        permissions: t.stringList({
            description: 'What this role allows: read, submitTasks, cancelTasks, retryTasks, manageOrgs, manageTokens, readAudit.',
            resolve: (viewer) => permissions.filter((permission) => can(viewer.role, permission)),
        }),
        token: t.prismaField({
            type: ApiTokenNode,
            nullable: true,
            resolve: (query, viewer, _args, ctx) => viewer.tokenId ? ctx.services.tokens.find(viewer.tokenId, query) : null,
        }),
    }),
});
builder.queryField('viewer', (t) => t.field({
    type: ViewerRef,
    authScopes: { read: true },
    resolve: (_root, _args, ctx) => ctx.principal,
}));
