// The root fields an operation selects, through inline fragments and fragment spreads: what the authentication
// plugin (an introspection-only query needs no token) and the shared subscriptions (which field a subscription
// is, for its catch-up) look at before the operation runs.
import { getOperationAST, Kind, type DocumentNode, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/** The operation that runs (by `operationName`, or the only one) and its root fields, in order; null when there is no such operation. */
export function rootFields(document: DocumentNode, operationName?: string | null): { operation: OperationDefinitionNode; fields: FieldNode[] } | null {
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f.selectionSet]),
  );
  const fields: FieldNode[] = [];
  const seen = new Set<string>(); // a spread of a fragment already walked (or a cycle, which validation refuses) adds nothing
  const walk = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment);
      }
    }
  };
  walk(operation.selectionSet);
  return { operation, fields };
}
