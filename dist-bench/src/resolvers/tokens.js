import { builder } from '../builder.js';
import { NotFoundError } from '../domain/errors.js';
import { ApiTokenNode, CreateApiTokenInput } from '../schema/token.js';
import { actor, parseNodeId } from './ids.js';
const CreatedApiToken = builder.objectRef('CreatedApiToken').implement({
    fields: (t) => ({
        token: t.string({
            description: 'The bearer token. Shown this once; Switchyard keeps only its hash.',
            resolve: (created) => created.secret,
        }),
        apiToken: t.field({ type: ApiTokenNode, resolve: (created) => created.token }),
    }),
});
builder.queryField('apiTokens', (t) => t.prismaConnection({
    type: 'ApiToken',
    cursor: 'id',
    authScopes: { manageTokens: true },
    description: 'Every API token, newest first, including revoked and expired ones.',
    totalCount: (_parent, _args, ctx) => ctx.services.tokens.count(),
    resolve: (query, _root, _args, ctx) => ctx.services.tokens.list(query),
}));
builder.mutationFields((t) => ({
    createApiToken: t.field({
        type: CreatedApiToken,
        authScopes: { manageTokens: true },
        args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
        errors: { dataField: { name: 'created' } },
        resolve: (_root, { input }, ctx) => ctx.services.tokens.create(actor(ctx), {
            name: input.name,
            role: input.role,
            userName: input.userName ?? undefined,
            expiresAt: input.expiresAt ?? undefined,
        }),
    }),
    revokeApiToken: t.field({
        type: ApiTokenNode,
        description: 'Revokes a token at once. Revoking an already revoked token changes nothing.',
        authScopes: { manageTokens: true },
        args: { id: t.arg.id({ required: true }) },
        errors: { types: [NotFoundError], dataField: { name: 'apiToken' } },
        resolve: (_root, args, ctx) => ctx.services.tokens.revoke(actor(ctx), parseNodeId(args.id, 'ApiToken', ['id'])),
    }),
}));
