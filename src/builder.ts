// The one Pothos builder: its Context, scalars and plugins. Types are added under src/schema/ and fields
// under src/resolvers/; src/schema/index.ts assembles them.
import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ZodPlugin from '@pothos/plugin-zod';
import { GraphQLError, Kind } from 'graphql';
import type { Context } from './context.js';
import { can, type Permission } from './domain/auth/permissions.js';
import { ValidationFailedError } from './domain/errors.js';
import type PrismaTypes from './generated/pothos-types.js';
import { getDatamodel } from './generated/pothos-types.js';
import { decodeNodeId, lookUpNodes } from './resolvers/node-lookup.js';
import ConnectionArgumentsPlugin from './schema/connection-arguments.js';

type AuthScopes = Record<Permission, boolean>;

function capitalise(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

type BuilderTypes = {
  Context: Context;
  PrismaTypes: PrismaTypes;
  AuthScopes: AuthScopes;
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string | number };
    File: { Input: File; Output: never };
  };
};

// Typed out because node(id:) and nodes(ids:) load through the builder itself, which would otherwise leave
// its type to be inferred from its own initializer.
export const builder: PothosSchemaTypes.SchemaBuilder<PothosSchemaTypes.ExtendDefaultTypes<BuilderTypes>> = new SchemaBuilder<BuilderTypes>({
  // Order matters: the first plugin's resolver wrapper runs first, so permissions are checked before paging
  // arguments, and those before the Prisma plugin plans and loads a connection.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ZodPlugin, ConnectionArgumentsPlugin, PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: (ctx) => {
      const role = ctx.principal?.role;
      const scope = (permission: Permission) => role !== undefined && can(role, permission);
      return {
        read: scope('read'),
        submitTasks: scope('submitTasks'),
        cancelTasks: scope('cancelTasks'),
        retryTasks: scope('retryTasks'),
        manageOrgs: scope('manageOrgs'),
        manageTokens: scope('manageTokens'),
        readAudit: scope('readAudit'),
      };
    },
    authorizeOnSubscribe: true,
    unauthorizedError: (_parent, context, info) =>
      new GraphQLError(
        context.principal
          ? `Your role (${context.principal.role}) may not access ${info.parentType.name}.${info.fieldName}`
          : 'Authentication required',
        { extensions: { code: context.principal ? 'FORBIDDEN' : 'UNAUTHENTICATED' } },
      ),
  },
  errors: {
    defaultTypes: [ValidationFailedError],
    defaultResultOptions: { name: ({ fieldName }) => `${capitalise(fieldName)}Success` },
    defaultUnionOptions: { name: ({ fieldName }) => `${capitalise(fieldName)}Result` },
  },
  zod: {
    validationError: (error) => ValidationFailedError.fromZod(error),
  },
  prisma: {
    client: (ctx) => ctx.services.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // Node ids are opaque strings; `node(id:)` and `nodes(ids:)` resolve any of them, null for an object that
    // does not exist and VALIDATION_FAILED for a malformed id (resolvers/node-lookup.ts).
    decodeGlobalID: decodeNodeId,
    nodeQueryOptions: {
      authScopes: { read: true },
      resolve: async (_root, args, context, info) => (await lookUpNodes(builder, [args.id], () => ['id'], context, info))[0],
    },
    nodesQueryOptions: {
      authScopes: { read: true },
      resolve: (_root, args, context, info) => lookUpNodes(builder, args.ids, (index) => ['ids', String(index)], context, info),
    },
  },
});

builder.scalarType('DateTime', {
  description: 'An instant, as an ISO 8601 string in UTC.',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value as string).toISOString()),
  parseValue: (value) => parseDateTime(value),
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be an ISO 8601 string');
    return parseDateTime(ast.value);
  },
});

const dateTimePattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
// The instants Postgres timestamps can take from us: it has no year 0 (0000-01-01 failed the insert with
// 22008), and the input has four-digit years, which an offset must not push past 9999 either.
const earliestDateTime = Date.parse('0001-01-01T00:00:00.000Z');
const latestDateTime = Date.parse('9999-12-31T23:59:59.999Z');

function parseDateTime(value: unknown): Date {
  const parts = typeof value === 'string' ? dateTimePattern.exec(value) : null;
  const time = parts ? Date.parse(parts[0]) : Number.NaN;
  // Date.parse refuses a month 13 or a minute 60, but rolls a day past the end of the month into the next
  // one (2027-02-30 was stored as March 2) and takes hour 24 as the next midnight: refuse those here.
  const [year, month, day, hour] = (parts ?? []).slice(1, 5).map(Number) as [number, number, number, number];
  if (!parts || !(time >= earliestDateTime && time <= latestDateTime) || day > daysInMonth(year, month) || hour > 23) {
    throw new GraphQLError('DateTime must be an ISO 8601 string with a time zone, e.g. 2026-01-31T09:00:00Z');
  }
  return new Date(time);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

builder.scalarType('File', {
  description: 'A file sent with the GraphQL multipart request spec (multipart/form-data).',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar');
  },
  parseValue: (value) => {
    // Yoga hands over its fetch implementation's File (on Node a ponyfill class, not the global File), so
    // recognise a file by its shape rather than with instanceof.
    const file = value as { name?: unknown; arrayBuffer?: unknown } | null;
    if (!file || typeof file !== 'object' || typeof file.name !== 'string' || typeof file.arrayBuffer !== 'function') {
      throw new GraphQLError('File must be sent as a multipart upload');
    }
    return value as File;
  },
});

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function parse(ast): unknown {
    switch (ast.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return ast.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(ast.value);
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return ast.values.map((v) => parse(v));
      case Kind.OBJECT:
        return Object.fromEntries(ast.fields.map((f) => [f.name.value, parse(f.value)]));
      default:
        throw new GraphQLError('JSON literals cannot contain variables');
    }
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
