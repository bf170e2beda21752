import { builder } from '../builder.js';
import { OrgKindEnum, OrgStatusEnum } from './enums.js';
export const OrgNode = builder.prismaNode('Org', {
    description: 'A Salesforce org Switchyard can act on. Its credentials live in the secret store and are never exposed.',
    id: { field: 'id' },
    authScopes: { read: true },
    fields: (t) => ({
        alias: t.exposeString('alias'),
        kind: t.expose('kind', { type: OrgKindEnum }),
        isDevHub: t.exposeBoolean('isDevHub'),
        instanceUrl: t.exposeString('instanceUrl'),
        salesforceOrgId: t.exposeString('sfOrgId', { nullable: true, description: 'Known after a successful org check.' }),
        status: t.expose('status', { type: OrgStatusEnum }),
        lastCheckedAt: t.expose('lastCheckedAt', { type: 'DateTime', nullable: true }),
        createdAt: t.expose('createdAt', { type: 'DateTime' }),
        updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
        tasks: t.relatedConnection('tasks', {
            cursor: 'id',
            totalCount: true,
            description: 'Tasks on this org, newest first.',
            query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
        }),
    }),
});
export const RemovedOrgRef = builder.objectRef('RemovedOrg').implement({
    fields: (t) => ({
        id: t.exposeID('id', { description: 'Raw id of the removed org; tasks keep its alias in orgAlias.' }),
        alias: t.exposeString('alias'),
    }),
});
export const OrgCredentialsInput = builder.inputType('OrgCredentialsInput', {
    description: 'Either sfdxAuthUrl (force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>, as `sf org display --verbose` prints it) or instanceUrl + refreshToken, with clientId/clientSecret for your own connected app.',
    fields: (t) => ({
        sfdxAuthUrl: t.string(),
        instanceUrl: t.string(),
        refreshToken: t.string(),
        clientId: t.string(),
        clientSecret: t.string(),
    }),
});
export const RegisterOrgInput = builder.inputType('RegisterOrgInput', {
    fields: (t) => ({
        alias: t.string({ required: true }),
        kind: t.field({ type: OrgKindEnum, required: true }),
        isDevHub: t.boolean(),
        credentials: t.field({ type: OrgCredentialsInput, required: true }),
    }),
});
export const UpdateOrgInput = builder.inputType('UpdateOrgInput', {
    description: 'Fields to change; omitted fields stay as they are.',
    fields: (t) => ({
        alias: t.string(),
        kind: t.field({ type: OrgKindEnum }),
        isDevHub: t.boolean(),
    }),
});
