// node(id:) and nodes(ids:), wired in through the relay options in builder.ts. Left to the plugins, any
// decodable id went to the type's loader, and the Prisma plugin loads with findUniqueOrThrow: an object that
// does not exist was a masked internal error (nulling all of nodes(ids:)), an id that is no UUID a Postgres
// error. Here a malformed id is a VALIDATION_FAILED at its argument path, as task(id:) answers, and an id of an
// object that does not exist (any more) is null, in nodes(ids:) for that entry only.
import type { SchemaTypes } from '@pothos/core';
import { resolveNodes } from '@pothos/plugin-relay';
import { isObjectType, type GraphQLResolveInfo } from 'graphql';
import { ValidationFailedError, type FieldIssue } from '../domain/errors.js';
import { parseGlobalId } from '../domain/ids.js';

interface GlobalId {
  typename: string;
  id: string;
}

/**
 * The relay plugin's decodeGlobalID. It cannot tell which argument (or list entry) it decodes, so instead of
 * throwing it turns anything but base64("Type:uuid") into an id of no type, which lookUpNodes refuses with
 * the right path.
 */
export function decodeNodeId(globalId: string): GlobalId {
  return parseGlobalId(globalId) ?? { typename: '', id: '' };
}

/** The most ids one nodes(ids:) takes: a page's worth (the operation's node budget counts them as a page). */
export const maxNodeIds = 100;

/** Loads the nodes behind decoded ids, in order; `argPath` names the argument of each for errors. */
export async function lookUpNodes<Types extends SchemaTypes>(
  builder: PothosSchemaTypes.SchemaBuilder<Types>,
  ids: readonly GlobalId[],
  argPath: (index: number) => string[],
  context: object,
  info: GraphQLResolveInfo,
): Promise<unknown[]> {
  if (ids.length > maxNodeIds) throw new ValidationFailedError([{ path: ['ids'], message: `must hold at most ${maxNodeIds} ids` }]);
  // Every malformed id is reported at once, and none is looked up: the ids come from the client, which
  // should fix them all before trying again.
  const issues: FieldIssue[] = ids.flatMap((id, index) =>
    isNodeType(info, id.typename) ? [] : [{ path: argPath(index), message: 'must be the id of an object (a Node)' }],
  );
  if (issues.length > 0) throw new ValidationFailedError(issues);
  // One by one: resolveNodes fails as a whole when any of its loads fails. Each id once, however often it is given.
  const loads = new Map<string, Promise<unknown>>();
  const load = (id: GlobalId) => {
    const key = `${id.typename}:${id.id}`;
    let node = loads.get(key);
    if (!node) loads.set(key, (node = resolveNodes(builder, context, info, [id]).then(([found]) => found, nullIfNotFound)));
    return node;
  };
  return Promise.all(ids.map(load));
}

function isNodeType(info: GraphQLResolveInfo, typename: string): boolean {
  const type = typename ? info.schema.getType(typename) : undefined;
  return isObjectType(type) && type.getInterfaces().some((nodeInterface) => nodeInterface.name === 'Node');
}

/** Prisma's P2025 is findUniqueOrThrow finding nothing: the id is well-formed, its object does not exist. */
function nullIfNotFound(error: unknown): null {
  if ((error as { code?: unknown }).code === 'P2025') return null;
  throw error;
}
