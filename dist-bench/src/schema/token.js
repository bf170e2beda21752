import { builder } from '../builder.js';
import { RoleEnum } from './enums.js';
export const ApiTokenNode = builder.prismaNode('ApiToken', {
    description: 'An API token. Only its prefix is ever shown again after creation.',
    id: { field: 'id' },
    // Anyone may see the token they are using (viewer.token); any other token needs manageTokens, as
    // apiTokens does, so node(id:)/nodes(ids:) cannot be used to read other people's tokens.
    authScopes: (token, ctx) => (token.id === ctx.principal?.tokenId ? { read: true } : { manageTokens: true }),
    fields: (t) => ({
        name: t.exposeString('name'),
        role: t.expose('role', { type: RoleEnum }),
        prefix: t.exposeString('prefix', { description: 'The first characters of the token, to tell tokens apart.' }),
        userName: t.string({ select: { user: { select: { name: true } } }, resolve: (token) => token.user.name }),
        expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
        lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
        revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
        createdAt: t.expose('createdAt', { type: 'DateTime' }),
    }),
});
export const CreatedApiTokenRef = builder.objectRef('CreatedApiToken');
export const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
    fields: (t) => ({
        name: t.string({ required: true }),
        role: t.field({ type: RoleEnum, required: true }),
        userName: t.string({ description: 'Whose token it is; defaults to your own user.' }),
        expiresAt: t.field({ type: 'DateTime' }),
    }),
});
