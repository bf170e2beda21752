// Every operation needs a valid bearer token, except pure introspection (so IDE explorers and GraphiQL can
// load the schema before a token is pasted in). A presented but invalid token is always refused, even for
// introspection, so a client learns at once that its token is bad. Runs for HTTP and WebSocket alike.
import { GraphQLError, Kind } from 'graphql';
export function unauthenticated(message) {
    return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } } });
}
export function isIntrospectionOnly(document, operationName) {
    const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
    if (!operation || operation.operation !== 'query')
        return false;
    const fragments = new Map(document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet]] : [])));
    const onlyMeta = (set, seen) => set.selections.every((selection) => {
        if (selection.kind === Kind.FIELD)
            return selection.name.value.startsWith('__');
        if (selection.kind === Kind.INLINE_FRAGMENT)
            return onlyMeta(selection.selectionSet, seen);
        const name = selection.name.value;
        if (seen.has(name))
            return true;
        const fragment = fragments.get(name);
        return fragment !== undefined && onlyMeta(fragment, new Set([...seen, name]));
    });
    return onlyMeta(operation.selectionSet, new Set());
}
function check(context, document, operationName) {
    if (context.rejectedCredential)
        throw unauthenticated('The API token is invalid, expired or revoked');
    if (!context.principal && !isIntrospectionOnly(document, operationName)) {
        throw unauthenticated('Authentication required: send Authorization: Bearer <token>');
    }
}
export function useAuthentication() {
    return {
        onExecute({ args }) {
            check(args.contextValue, args.document, args.operationName);
        },
        onSubscribe({ args }) {
            check(args.contextValue, args.document, args.operationName);
        },
    };
}
