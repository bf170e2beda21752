// What clients see of errors that are not typed results.
// - A DomainError thrown where the field has no typed error result (e.g. task(id:) with a malformed id) is
//   an expected failure: its message and code are kept, and it is not logged as an error.
// - graphql-js quotes the whole offending value when a variable does not match its type (e.g. a credentials
//   object with a misspelt field), and scalars quote a value of the wrong type (a token sent as a list).
//   Such values can be secrets, so the quotes are cut; which field is wrong and why stays. The error is
//   redacted in place: Yoga logs the original whenever maskError returns another error, and the log must
//   not get the value either.
// - Anything else unexpected is masked by Yoga's default.
import { GraphQLError } from 'graphql';
import { maskError as defaultMaskError, type Plugin } from 'graphql-yoga';
import { DomainError, ValidationFailedError } from '../domain/errors.js';

// The quote runs up to the path (` at "input.credentials"`) and the last "; ": the value itself may contain
// "; " (inside a string), the message after it does not.
const quotedVariableValue = /^(Variable "\$[_A-Za-z][_0-9A-Za-z]*" got invalid value) .*?((?: at "[^"]*")?; (?:(?!; ).)*|)$/s;
// e.g. `String cannot represent a non string value: ["5Aep…"]`, in variable errors and validation errors.
const quotedScalarValue = /(\b(?:String|Int|Float|Boolean|ID|Enum "[_A-Za-z][_0-9A-Za-z]*") cannot represent [^:\n]*value): .*/g;

function redactQuotedValues(text: string): string {
  return text.replace(quotedVariableValue, '$1$2').replace(quotedScalarValue, '$1');
}

export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  if (!(error instanceof GraphQLError)) return defaultMaskError(error, message, isDev);
  const original = error.originalError;
  if (original instanceof DomainError) {
    // Shown as it is, and changed in place: it is the client's mistake (a malformed id, say), and Yoga logs at
    // error level every error that maskError replaces.
    error.message = original.message;
    (error as { extensions: GraphQLError['extensions'] }).extensions = {
      ...error.extensions,
      code: original.code,
      ...(original instanceof ValidationFailedError ? { fieldErrors: original.issues } : {}),
    };
    // Without its original error it is what it now is, an expected GraphQL error: Yoga answers HTTP 500 for a
    // result without data whose errors have other causes (a subscription refusing its arguments over SSE).
    (error as { originalError: Error | undefined }).originalError = undefined;
    return error;
  }
  const redacted = redactQuotedValues(error.message);
  if (redacted !== error.message) {
    error.message = redacted;
    if (error.stack) error.stack = redactQuotedValues(error.stack);
    return error;
  }
  return defaultMaskError(error, message, isDev);
}

/**
 * Validation errors do not pass through maskError: a literal of the wrong type written in the document
 * (`credentials: {refreshToken: 5Aep…}` without quotes) would be quoted back as graphql-js reports it. The same
 * redaction, on the result of validation.
 */
export function useValidationRedaction(): Plugin {
  return {
    onValidate: () => ({ result, setResult }) => {
      let changed = false;
      const redacted = result.map((error) => {
        const message = redactQuotedValues(error.message);
        if (message === error.message) return error;
        changed = true;
        return new GraphQLError(message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: error.extensions });
      });
      if (changed) setResult(redacted);
    },
  };
}
