import { builder } from '../builder.js';

builder.queryField('auditEntries', (t) =>
  t.prismaConnection({
    type: 'AuditEntry',
    cursor: 'id',
    authScopes: { readAudit: true },
    description: 'Changes to orgs, credentials, tokens, schedules, webhook sources and rules, and notification subscribers, newest first.',
    totalCount: (_parent, _args, ctx) => ctx.services.audit.count(),
    resolve: (query, _root, _args, ctx) => ctx.services.audit.list(query),
  }),
);
