// Assembles the schema: importing a module registers its types or fields on the builder.
import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { builder } from '../builder.js';
import './enums.js';
import './errors.js';
import './org.js';
import './task.js';
import './token.js';
import './audit.js';
import './schedule.js';
import './resources.js';
import './artifact.js';
import './webhook.js';
import './notification.js';
import '../resolvers/viewer.js';
import '../resolvers/orgs.js';
import '../resolvers/tasks.js';
import '../resolvers/tokens.js';
import '../resolvers/audit.js';
import '../resolvers/schedules.js';
import '../resolvers/subscriptions.js';
import '../resolvers/resources.js';
import '../resolvers/artifacts.js';
import '../resolvers/webhooks.js';
import '../resolvers/notifications.js';

let schema: GraphQLSchema | undefined;

export function getSchema(): GraphQLSchema {
  schema ??= lexicographicSortSchema(builder.toSchema());
  return schema;
}
