// A Pothos plugin that checks the paging arguments of every Prisma connection (first, last, after, before)
// before the connection is loaded, and answers a bad one with VALIDATION_FAILED at that field.
//
// Left to @pothos/plugin-prisma, a cursor that decodes but holds the wrong value (base64("GPC:S:not-a-uuid"),
// a number, a date, a compound cursor on an `id` connection) reaches Prisma as a cursor on a UUID or Int
// column, and the database error is masked as an INTERNAL_SERVER_ERROR; its own argument errors ("Invalid
// cursor", a negative `first`) carry no code. A relation connection (Task.events, Org.tasks…) is worse: its
// cursor is read while the parent's query is planned, so the error lands on the parent (`task`) instead of
// the connection. This plugin therefore (1) plans a relation connection with bad arguments as if they were
// absent, so the parent loads, and (2) refuses the arguments when the connection field itself resolves,
// inside the permission check (an unauthorised caller still gets FORBIDDEN).
import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import { getModel, parsePrismaCursor } from '@pothos/plugin-prisma';
import { getNamedType, isObjectType, type GraphQLFieldResolver, type GraphQLOutputType } from 'graphql';
import { ValidationFailedError, type FieldIssue } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';

const pluginName = 'connectionArguments';

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      connectionArguments: ConnectionArgumentsPlugin<Types>;
    }
  }
}

interface ConnectionArgs {
  first?: number | null;
  last?: number | null;
  after?: string | null;
  before?: string | null;
}

/** Whether one decoded cursor part can be a value of its column. */
type PartCheck = (value: unknown) => boolean;

const int4Max = 2 ** 31 - 1;
const columnChecks: Record<string, PartCheck> = {
  // Every String key in the schema is a `@db.Uuid` column.
  String: (value) => typeof value === 'string' && isUuid(value),
  Int: (value) => typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= int4Max,
};

/**
 * What a cursor of the model's connections decodes to. They page by the row's UUID `id` (`cursor: 'id'`),
 * or, for a model without one (TaskEvent), by its unique index (`taskId_seq`): a tuple of those columns.
 */
function cursorCheck(model: ReturnType<typeof getModel>, modelName: string): (decoded: unknown) => boolean {
  const columnCheck = (name: string): PartCheck => {
    const check = columnChecks[model.fields.find((f) => f.name === name)?.type ?? ''];
    if (!check) throw new Error(`Connection cursor column ${modelName}.${name} has a type this plugin cannot check`);
    return check;
  };
  if (model.fields.some((f) => f.name === 'id' && f.type === 'String')) return columnCheck('id');
  const index = model.uniqueIndexes[0];
  if (!index) throw new Error(`Connections of ${modelName} have no cursor this plugin knows`);
  const parts = index.fields.map(columnCheck);
  return (decoded) => Array.isArray(decoded) && decoded.length === parts.length && parts.every((check, i) => check(decoded[i]));
}

function isCursorOf(cursor: string, check: (decoded: unknown) => boolean): boolean {
  try {
    return check(parsePrismaCursor(cursor));
  } catch {
    return false;
  }
}

/** Every problem with the paging arguments, the same rules @pothos/plugin-prisma enforces, plus the cursor's value. */
function connectionIssues(args: ConnectionArgs, check: (decoded: unknown) => boolean): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const name of ['first', 'last'] as const) {
    const size = args[name];
    if (size != null && size < 0) issues.push({ path: [name], message: 'must be a non-negative integer' });
  }
  for (const name of ['after', 'before'] as const) {
    const cursor = args[name];
    if (cursor != null && !isCursorOf(cursor, check)) issues.push({ path: [name], message: 'is not a cursor of this list (pass a cursor it returned)' });
  }
  if (args.after != null && args.before != null) issues.push({ path: ['before'], message: 'cannot be combined with after' });
  if (args.before != null && args.first != null) issues.push({ path: ['before'], message: 'cannot be combined with first (page backward with last and before)' });
  if (args.after != null && args.last != null) issues.push({ path: ['after'], message: 'cannot be combined with last (page forward with first and after)' });
  return issues;
}

/** The Prisma model behind a connection's nodes: edges.node's type. */
function nodeModel(returnType: GraphQLOutputType): string | undefined {
  const connection = getNamedType(returnType);
  const edge = isObjectType(connection) ? getNamedType(connection.getFields().edges?.type) : undefined;
  const node = isObjectType(edge) ? getNamedType(edge.getFields().node?.type) : undefined;
  return (node?.extensions as { pothosPrismaModel?: string } | undefined)?.pothosPrismaModel;
}

type RelationSelect = (args: ConnectionArgs, ...rest: unknown[]) => unknown;

export class ConnectionArgumentsPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  private readonly checks = new Map<string, (decoded: unknown) => boolean>();

  private checkFor(modelName: string) {
    let check = this.checks.get(modelName);
    if (!check) {
      check = cursorCheck(getModel(modelName, this.builder), modelName);
      this.checks.set(modelName, check);
    }
    return check;
  }

  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const extensions = fieldConfig.extensions as { pothosPrismaRelationField?: { type: string }; pothosPrismaSelect?: unknown } | undefined;
    const select = extensions?.pothosPrismaSelect;
    if (!isConnection(fieldConfig) || !extensions?.pothosPrismaRelationField || typeof select !== 'function') return fieldConfig;
    const modelName = extensions.pothosPrismaRelationField.type;
    const original = select as RelationSelect;
    const planned: RelationSelect = (args, ...rest) =>
      connectionIssues(args, this.checkFor(modelName)).length > 0 ? original({ ...args, first: null, last: null, after: null, before: null }, ...rest) : original(args, ...rest);
    return { ...fieldConfig, extensions: { ...fieldConfig.extensions, pothosPrismaSelect: planned } };
  }

  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    if (!isConnection(fieldConfig)) return resolver;
    // The field's return type is fixed once the schema is built: find its model on the first call only.
    let modelName: string | null | undefined;
    return (parent, args, context, info) => {
      modelName ??= nodeModel(info.returnType) ?? null;
      if (modelName) {
        const issues = connectionIssues(args as ConnectionArgs, this.checkFor(modelName));
        if (issues.length > 0) throw new ValidationFailedError(issues);
      }
      return resolver(parent, args, context, info);
    };
  }
}

function isConnection<Types extends SchemaTypes>(fieldConfig: PothosOutputFieldConfig<Types>): boolean {
  return ['first', 'last', 'after', 'before'].every((name) => name in fieldConfig.args);
}

SchemaBuilder.registerPlugin(pluginName, ConnectionArgumentsPlugin);

export default pluginName;
