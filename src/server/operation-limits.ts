// Limits on what one GraphQL operation may ask for, checked before execution: nesting depth, aliases,
// the number of fields selected (a simple cost), and tokens in the document (checked while parsing, so a
// huge document is refused before it is held in memory as an AST). Introspection can be switched off.
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { parse } from 'graphql';

export interface OperationLimits {
  maxDepth: number;
  maxAliases: number;
  maxFields: number;
  maxTokens: number;
  introspection: boolean;
}

function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** Depth, aliases and fields of the whole operation, following fragments (each counted where it is spread). */
function measure(context: ValidationContext, selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, depth: number, seen: Set<string>) {
  let deepest = depth;
  let aliases = 0;
  let fields = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      fields += 1;
      if (selection.alias) aliases += 1;
      if (selection.selectionSet) {
        const inner = measure(context, selection.selectionSet, fragments, depth + 1, seen);
        deepest = Math.max(deepest, inner.deepest);
        aliases += inner.aliases;
        fields += inner.fields;
      }
    } else {
      const set =
        selection.kind === Kind.INLINE_FRAGMENT
          ? selection.selectionSet
          : seen.has(selection.name.value)
            ? undefined
            : fragments.get(selection.name.value)?.selectionSet;
      if (!set) continue;
      const inner = measure(context, set, fragments, depth, selection.kind === Kind.FRAGMENT_SPREAD ? new Set([...seen, selection.name.value]) : seen);
      deepest = Math.max(deepest, inner.deepest);
      aliases += inner.aliases;
      fields += inner.fields;
    }
  }
  return { deepest, aliases, fields };
}

function limitsRule(limits: OperationLimits) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const fragments = new Map(context.getDocument().definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])));
      const { deepest, aliases, fields } = measure(context, node.selectionSet, fragments, 1, new Set());
      if (deepest > limits.maxDepth) context.reportError(limitError('QUERY_TOO_DEEP', `The operation nests ${deepest} levels deep; the limit is ${limits.maxDepth}`));
      if (aliases > limits.maxAliases) context.reportError(limitError('TOO_MANY_ALIASES', `The operation uses ${aliases} aliases; the limit is ${limits.maxAliases}`));
      if (fields > limits.maxFields) context.reportError(limitError('QUERY_TOO_COSTLY', `The operation selects ${fields} fields; the limit is ${limits.maxFields}`));
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
    onParse({ setParseFn }) {
      // graphql-js stops at the limit with "Document contains more that N tokens" (reported as GRAPHQL_PARSE_FAILED).
      setParseFn((source, options) => parse(source, { ...options, maxTokens: limits.maxTokens }));
    },
    onValidate({ addValidationRule }) {
      addValidationRule(limitsRule(limits));
    },
  };
}
