import { builder } from '../builder.js';

export const AuditEntryNode = builder.prismaNode('AuditEntry', {
  description: 'A record of a change to orgs, credentials, tokens, schedules, webhook sources and rules, or notification subscribers.',
  id: { field: 'id' },
  authScopes: { readAudit: true },
  fields: (t) => ({
    actor: t.exposeString('actor'),
    action: t.exposeString('action', { description: 'e.g. org.register, org.credentials.write, token.revoke.' }),
    targetType: t.exposeString('targetType'),
    targetId: t.exposeString('targetId'),
    details: t.expose('details', { type: 'JSON', nullable: true }),
    requestId: t.exposeString('requestId', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
