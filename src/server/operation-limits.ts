// Limits on what one GraphQL operation may ask for, checked before execution: nesting depth, aliases,
// the number of fields selected (a simple cost), the objects its connections may return (page sizes multiply
// down nested connections: orgs → tasks → events at 100 a page is a million events), and tokens in the document (checked while parsing, so a
// huge document is refused before it is held in memory as an AST). Introspection can be switched off.
// Bracket nesting of the document and of the variables is checked before parsing: graphql-js parses
// recursively, so `[[[…]]]` or `{a:{a:…}}` a few thousand levels deep (well under the token limit) overflowed
// the call stack, a RangeError answered as a 500, and nested variables overflowed what walks them recursively
// (JSON.stringify, the WebSocket sharing key).
import {
  getNamedType,
  GraphQLError,
  isInterfaceType,
  isObjectType,
  Kind,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLNamedType,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { parse } from 'graphql';
import { maxNodeIds } from '../resolvers/node-lookup.js';

export interface OperationLimits {
  maxDepth: number;
  maxAliases: number;
  maxFields: number;
  /** Objects the operation's connections may return, each page size multiplied by those of the connections around it. */
  maxNodes: number;
  maxTokens: number;
  /** Deepest nesting of brackets in the document, and of arrays and objects in the variables. */
  maxNesting: number;
  introspection: boolean;
}

function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** Refused before parsing, like a document over the token limit (Yoga sets that code only for HTTP requests). */
function unparsable(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } } });
}

/** The deepest nesting of `{`, `[` and `(` in a GraphQL document, outside strings and comments; one linear scan. */
function documentNesting(source: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < source.length; i += 1) {
    const char = source[i];
    if (char === '{' || char === '[' || char === '(') deepest = Math.max(deepest, ++depth);
    else if (char === '}' || char === ']' || char === ')') depth -= 1;
    else if (char === '#') i = lineEnd(source, i);
    else if (char === '"') i = source.startsWith('""', i + 1) ? closing(source, i + 2, '"""') : Math.min(closing(source, i, '"'), lineEnd(source, i));
  }
  return deepest;
}

/** Where the line ends: comments run to it, and so does an unterminated string (which the parser reports). */
function lineEnd(source: string, from: number): number {
  const newline = source.indexOf('\n', from);
  return newline === -1 ? source.length : newline;
}

/** The index of the last character of the next `quote` after `from` not escaped by a backslash (else the end). */
function closing(source: string, from: number, quote: string): number {
  for (let i = from + 1; i < source.length; i += 1) {
    if (source[i] === '\\') i += 1;
    else if (source.startsWith(quote, i)) return i + quote.length - 1;
  }
  return source.length;
}

/** Arrays and plain objects: what JSON parses to (not an uploaded File, whose bytes are no nesting). */
function isJsonContainer(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return Array.isArray(value) || prototype === Object.prototype || prototype === null;
}

/** The deepest nesting of arrays and objects in a JSON value, walked without recursion. */
function valueNesting(value: unknown): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 0]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [item, depth] = next;
    if (!isJsonContainer(item)) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** A connection's page when `first`/`last` is not given, and the most it may ask for (the builder's relay options). */
const defaultPageSize = 20;
const maxPageSize = 100;

/**
 * How many objects a connection field may return per parent: its `first` or `last` when written in the document,
 * the largest page when it comes from a variable (unknown here: documents are validated once, whatever the
 * variables), the default page without either; null for a field that is not a connection.
 */
function pageSize(field: FieldNode, type: GraphQLNamedType | undefined): number | null {
  if (!type?.name.endsWith('Connection')) return null;
  let size: number | null = null;
  for (const argument of field.arguments ?? []) {
    if (argument.name.value !== 'first' && argument.name.value !== 'last') continue;
    const given = argument.value.kind === Kind.INT ? Math.min(Math.max(Number(argument.value.value), 0), maxPageSize) : maxPageSize;
    size = Math.max(size ?? 0, given);
  }
  return size ?? defaultPageSize;
}

/**
 * How many objects nodes(ids:) may return: as many as its ids when they are written in the document, the most it
 * takes when they come from a variable; null for any other field. Not a connection, but a list of them all the same.
 */
function idsListSize(field: FieldNode, parent: GraphQLNamedType | undefined): number | null {
  if (parent?.name !== 'Query' || field.name.value !== 'nodes') return null;
  const ids = field.arguments?.find((argument) => argument.name.value === 'ids')?.value;
  return ids?.kind === Kind.LIST ? Math.min(ids.values.length, maxNodeIds) : maxNodeIds;
}

/** The type a field of `parent` returns, unwrapped (undefined for a field the schema does not have: validation reports it). */
function fieldType(parent: GraphQLNamedType | undefined, name: string): GraphQLNamedType | undefined {
  if (!parent || !(isObjectType(parent) || isInterfaceType(parent))) return undefined;
  const definition = parent.getFields()[name];
  return definition ? getNamedType(definition.type) : undefined;
}

/**
 * Depth, aliases, fields and connection objects of the whole operation, following fragments (each counted where
 * it is spread). `parent` is the type the selection set is on; `times` how many parent objects it may be read for.
 */
function measure(
  context: ValidationContext,
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  depth: number,
  seen: Set<string>,
  parent: GraphQLNamedType | undefined,
  times: number,
) {
  let deepest = depth;
  let aliases = 0;
  let fields = 0;
  let nodes = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      fields += 1;
      if (selection.alias) aliases += 1;
      const type = fieldType(parent, selection.name.value);
      const page = pageSize(selection, type) ?? idsListSize(selection, parent);
      const reads = page === null ? times : times * page;
      if (page !== null) nodes += reads;
      if (selection.selectionSet) {
        const inner = measure(context, selection.selectionSet, fragments, depth + 1, seen, type, reads);
        deepest = Math.max(deepest, inner.deepest);
        aliases += inner.aliases;
        fields += inner.fields;
        nodes += inner.nodes;
      }
    } else {
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value) ? fragments.get(selection.name.value) : undefined;
      const set = selection.kind === Kind.INLINE_FRAGMENT ? selection.selectionSet : fragment?.selectionSet;
      if (!set) continue;
      const condition = selection.kind === Kind.INLINE_FRAGMENT ? selection.typeCondition : fragment?.typeCondition;
      const on = condition ? context.getSchema().getType(condition.name.value) : parent;
      const inner = measure(context, set, fragments, depth, selection.kind === Kind.FRAGMENT_SPREAD ? new Set([...seen, selection.name.value]) : seen, on, times);
      deepest = Math.max(deepest, inner.deepest);
      aliases += inner.aliases;
      fields += inner.fields;
      nodes += inner.nodes;
    }
  }
  return { deepest, aliases, fields, nodes };
}

function limitsRule(limits: OperationLimits) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const fragments = new Map(context.getDocument().definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
      const root = context.getSchema().getRootType(node.operation) ?? undefined;
      const { deepest, aliases, fields, nodes } = measure(context, node.selectionSet, fragments, 1, new Set(), root, 1);
      if (deepest > limits.maxDepth) context.reportError(limitError('QUERY_TOO_DEEP', `The operation nests ${deepest} levels deep; the limit is ${limits.maxDepth}`));
      if (aliases > limits.maxAliases) context.reportError(limitError('TOO_MANY_ALIASES', `The operation uses ${aliases} aliases; the limit is ${limits.maxAliases}`));
      if (fields > limits.maxFields) context.reportError(limitError('QUERY_TOO_COSTLY', `The operation selects ${fields} fields; the limit is ${limits.maxFields}`));
      if (nodes > limits.maxNodes) {
        context.reportError(
          limitError('QUERY_TOO_COSTLY', `The operation's connections may return ${nodes} objects (page sizes multiplied down nested connections; a page size from a variable counts as ${maxPageSize}); the limit is ${limits.maxNodes}: ask for smaller pages, or page the inner connection separately`),
        );
      }
    },
    Field(node) {
      if (!limits.introspection && (node.name.value === '__schema' || node.name.value === '__type')) {
        context.reportError(limitError('INTROSPECTION_DISABLED', 'Introspection is disabled on this server; use the published schema.graphql'));
      }
    },
  });
}

export function useOperationLimits(limits: OperationLimits): Plugin {
  return {
    onParse({ context, setParseFn }) {
      // Checked on every request, here rather than in the parse function: Yoga caches a document's parse
      // result (and error) by its text, and the variables differ from one request to the next.
      const variables = (context as { params?: { variables?: unknown } }).params?.variables;
      const variablesNesting = valueNesting(variables);
      if (variablesNesting > limits.maxNesting) {
        throw unparsable(`The variables nest ${variablesNesting} levels deep; the limit is ${limits.maxNesting}`);
      }
      // graphql-js stops at the limit with "Document contains more that N tokens" (reported as GRAPHQL_PARSE_FAILED).
      setParseFn((source, options) => {
        const nesting = documentNesting(typeof source === 'string' ? source : source.body);
        if (nesting > limits.maxNesting) throw unparsable(`The document nests brackets ${nesting} levels deep; the limit is ${limits.maxNesting}`);
        return parse(source, { ...options, maxTokens: limits.maxTokens });
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule(limitsRule(limits));
    },
  };
}
