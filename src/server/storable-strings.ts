// Postgres text and jsonb cannot hold U+0000, and a lone UTF-16 surrogate is not text at all (it cannot be
// encoded as UTF-8). A string with either that reached a write failed there, as a masked internal error, after
// whatever the operation had done before it (say, writing a secret whose row then never came). Such strings are
// refused here before an operation runs: in its variables and in its literals, as VALIDATION_FAILED naming where.
import { GraphQLError, visit, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { FieldIssue } from '../domain/errors.js';
import { unstorableCharacter as unstorable } from '../domain/storable-text.js';

const problem = 'must not contain NUL (U+0000) or an unpaired surrogate';

/** Objects a variable's JSON value is made of; not an uploaded File, whose bytes are its own business. */
const isPlainObject = (value: object) => {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

/** Strings (values and object keys) in a variable's value that cannot be stored, by path. */
function inValue(value: unknown, path: string[], issues: FieldIssue[]): void {
  if (typeof value === 'string') {
    if (unstorable.test(value)) issues.push({ path, message: problem });
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => inValue(item, [...path, String(index)], issues));
  } else if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (unstorable.test(key)) issues.push({ path: [...path, key], message: `keys ${problem}` });
      inValue(item, [...path, key], issues);
    }
  }
}

/**
 * String literals of the document that cannot be stored, by the argument (and object fields) they are in. Kept by
 * document: Yoga's parse cache hands the same document back for the same text, so each is walked once.
 */
const literalIssues = new WeakMap<DocumentNode, FieldIssue[]>();

function inDocument(document: DocumentNode): FieldIssue[] {
  let issues = literalIssues.get(document);
  if (issues) return issues;
  issues = [];
  const path: string[] = [];
  visit(document, {
    Argument: { enter: (node) => void path.push(node.name.value), leave: () => void path.pop() },
    ObjectField: { enter: (node) => void path.push(node.name.value), leave: () => void path.pop() },
    StringValue(node) {
      if (unstorable.test(node.value)) issues!.push({ path: [...path], message: problem });
    },
  });
  literalIssues.set(document, issues);
  return issues;
}

function refusal(document: DocumentNode, variables: unknown): GraphQLError | null {
  const issues: FieldIssue[] = [...inDocument(document)];
  for (const [name, value] of Object.entries((variables as Record<string, unknown> | null | undefined) ?? {})) inValue(value, [`$${name}`], issues);
  if (issues.length === 0) return null;
  const where = issues.map((issue) => issue.path.join('.') || '(document)').join(', ');
  return new GraphQLError(`Strings ${problem}: ${where}`, { extensions: { code: 'VALIDATION_FAILED', fieldErrors: issues } });
}

/** What onExecute and onSubscribe both get: the operation's arguments, and a way to answer in its place. */
interface OperationStart {
  args: { document: DocumentNode; variableValues?: unknown };
  setResultAndStopExecution: (result: { errors: GraphQLError[] }) => void;
}

function stopIfUnstorable({ args, setResultAndStopExecution }: OperationStart): void {
  const error = refusal(args.document, args.variableValues);
  if (error) setResultAndStopExecution({ errors: [error] });
}

export function useStorableStrings(): Plugin {
  return { onExecute: stopIfUnstorable, onSubscribe: stopIfUnstorable };
}
