// What clients see of errors that are not typed results.
// - A DomainError thrown where the field has no typed error result (e.g. task(id:) with a malformed id) is
//   an expected failure: its message and code are kept.
// - graphql-js quotes the whole offending value when a variable does not match its type (e.g. a credentials
//   object with a misspelt field). Such values can be secrets, so the quote is cut; which field is wrong and
//   why stays.
// - Anything else unexpected is masked by Yoga's default.
import { GraphQLError } from 'graphql';
import { maskError as defaultMaskError } from 'graphql-yoga';
import { DomainError, ValidationFailedError } from '../domain/errors.js';
const quotedVariableValue = /^(Variable "\$[_A-Za-z][_0-9A-Za-z]*" got invalid value) .*?(; |$)/s;
export function maskError(error, message, isDev) {
    if (!(error instanceof GraphQLError))
        return defaultMaskError(error, message, isDev);
    const original = error.originalError;
    if (original instanceof DomainError) {
        return new GraphQLError(original.message, {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            path: error.path,
            extensions: {
                code: original.code,
                ...(original instanceof ValidationFailedError ? { fieldErrors: original.issues } : {}),
            },
        });
    }
    if (quotedVariableValue.test(error.message)) {
        return new GraphQLError(error.message.replace(quotedVariableValue, '$1$2'), {
            nodes: error.nodes,
            source: error.source,
            positions: error.positions,
            extensions: error.extensions,
        });
    }
    return defaultMaskError(error, message, isDev);
}
