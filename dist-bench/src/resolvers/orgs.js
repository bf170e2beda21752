import { builder } from '../builder.js';
import { ConflictError, InvalidCredentialsError, NotFoundError } from '../domain/errors.js';
import { OrgCredentialsInput, OrgNode, RegisterOrgInput, RemovedOrgRef, UpdateOrgInput } from '../schema/org.js';
import { actor } from './ids.js';
builder.queryFields((t) => ({
    orgs: t.prismaConnection({
        type: 'Org',
        cursor: 'id',
        authScopes: { read: true },
        description: 'Registered orgs, by alias.',
        totalCount: (_parent, _args, ctx) => ctx.services.orgs.count(),
        resolve: (query, _root, _args, ctx) => ctx.services.orgs.list(query),
    }),
    org: t.prismaField({
        type: 'Org',
        nullable: true,
        authScopes: { read: true },
        args: { alias: t.arg.string({ required: true }) },
        resolve: (query, _root, args, ctx) => ctx.services.orgs.findByAlias(args.alias, query),
    }),
}));
builder.mutationFields((t) => ({
    registerOrg: t.field({
        type: OrgNode,
        description: 'Registers an org and stores its credentials in the secret store.',
        authScopes: { manageOrgs: true },
        args: { input: t.arg({ type: RegisterOrgInput, required: true }) },
        errors: { types: [ConflictError, InvalidCredentialsError], dataField: { name: 'org' } },
        resolve: (_root, { input }, ctx) => ctx.services.orgs.register(actor(ctx), {
            alias: input.alias,
            kind: input.kind,
            isDevHub: input.isDevHub,
            credentials: input.credentials,
        }),
    }),
    updateOrg: t.field({
        type: OrgNode,
        authScopes: { manageOrgs: true },
        args: { alias: t.arg.string({ required: true }), patch: t.arg({ type: UpdateOrgInput, required: true }) },
        errors: { types: [NotFoundError, ConflictError], dataField: { name: 'org' } },
        resolve: (_root, args, ctx) => ctx.services.orgs.update(actor(ctx), args.alias, args.patch),
    }),
    rotateOrgCredentials: t.field({
        type: OrgNode,
        description: 'Replaces the org\'s credentials; the org becomes UNVERIFIED until checked again.',
        authScopes: { manageOrgs: true },
        args: { alias: t.arg.string({ required: true }), credentials: t.arg({ type: OrgCredentialsInput, required: true }) },
        errors: { types: [NotFoundError, InvalidCredentialsError], dataField: { name: 'org' } },
        resolve: (_root, args, ctx) => ctx.services.orgs.rotateCredentials(actor(ctx), args.alias, args.credentials),
    }),
    removeOrg: t.field({
        type: RemovedOrgRef,
        description: 'Removes the org and deletes its credentials. Refused while it has scheduled, queued or running tasks.',
        authScopes: { manageOrgs: true },
        args: { alias: t.arg.string({ required: true }) },
        errors: { types: [NotFoundError, ConflictError], dataField: { name: 'removed' } },
        resolve: (_root, args, ctx) => ctx.services.orgs.remove(actor(ctx), args.alias),
    }),
}));
