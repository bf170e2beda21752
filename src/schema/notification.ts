import { builder } from '../builder.js';

export const NotificationAttemptObject = builder.prismaObject('NotificationAttempt', {
  description: 'One POST of a notification to its subscriber.',
  authScopes: { manageOrgs: true },
  fields: (t) => ({
    notificationId: t.exposeString('notificationId', { description: 'Same for every retry of one notification (X-Switchyard-Delivery).' }),
    event: t.exposeString('event'),
    attempt: t.exposeInt('attempt'),
    ok: t.exposeBoolean('ok'),
    responseStatus: t.exposeInt('responseStatus', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
    durationMs: t.exposeInt('durationMs'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const NotificationSubscriberNode = builder.prismaNode('NotificationSubscriber', {
  description: 'A URL that receives signed JSON events (X-Switchyard-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>).',
  id: { field: 'id' },
  authScopes: { manageOrgs: true },
  fields: (t) => ({
    url: t.exposeString('url'),
    events: t.exposeStringList('events', { description: 'Events sent; empty means all: task.succeeded, task.failed, task.cancelled, deployment.completed, org.check_failed.' }),
    enabled: t.exposeBoolean('enabled'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    attempts: t.relatedConnection('attempts', {
      cursor: 'id',
      totalCount: true,
      description: 'Delivery attempts, newest first.',
      query: () => ({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] }),
    }),
  }),
});
