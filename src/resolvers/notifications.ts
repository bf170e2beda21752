import { builder } from '../builder.js';
import { NotFoundError } from '../domain/errors.js';
import type { NotificationSubscriber } from '../generated/prisma/client.js';
import { NotificationSubscriberNode } from '../schema/notification.js';
import { actor, parseNodeId } from './ids.js';

const CreatedSubscriber = builder.objectRef<{ subscriber: NotificationSubscriber; secret: string }>('CreatedNotificationSubscriber').implement({
  fields: (t) => ({
    subscriber: t.field({ type: NotificationSubscriberNode, resolve: (created) => created.subscriber }),
    secret: t.string({ description: 'The signing secret. Shown this once.', resolve: (created) => created.secret }),
  }),
});

builder.queryField('notificationSubscribers', (t) =>
  t.prismaConnection({
    type: 'NotificationSubscriber',
    cursor: 'id',
    authScopes: { manageOrgs: true },
    totalCount: (_p, _a, ctx) => ctx.services.notifications.countSubscribers(),
    resolve: (query, _root, _args, ctx) => ctx.services.notifications.listSubscribers(query),
  }),
);

builder.mutationFields((t) => ({
  createNotificationSubscriber: t.field({
    type: CreatedSubscriber,
    authScopes: { manageOrgs: true },
    args: { url: t.arg.string({ required: true }), events: t.arg.stringList() },
    errors: { dataField: { name: 'created' } },
    resolve: (_root, args, ctx) => ctx.services.notifications.createSubscriber(actor(ctx), { url: args.url, events: args.events }),
  }),
  deleteNotificationSubscriber: t.prismaField({
    type: NotificationSubscriberNode,
    authScopes: { manageOrgs: true },
    args: { id: t.arg.id({ required: true }) },
    errors: { types: [NotFoundError], dataField: { name: 'subscriber' } },
    // With what the selection asks of it (its attempts): once the subscriber is gone nothing could load those for it.
    resolve: (query, _root, args, ctx) => ctx.services.notifications.deleteSubscriber(actor(ctx), parseNodeId(args.id, 'NotificationSubscriber', ['id']), query),
  }),
}));
