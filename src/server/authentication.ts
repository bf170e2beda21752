// Every operation needs a valid bearer token, except pure introspection (so IDE explorers and GraphiQL can
// load the schema before a token is pasted in). A presented but invalid token is always refused, even for
// introspection, so a client learns at once that its token is bad. Runs for HTTP and WebSocket alike.
import type { ServerResponse } from 'node:http';
import { GraphQLError, type DocumentNode } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { AuthenticatedContext } from '../context.js';
import { rootFields } from './root-fields.js';
import type { TokenStreams } from './token-streams.js';

export function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } } });
}

export function isIntrospectionOnly(document: DocumentNode, operationName?: string | null): boolean {
  const root = rootFields(document, operationName);
  return root !== null && root.operation.operation === 'query' && root.fields.every((field) => field.name.value.startsWith('__'));
}

function check(context: AuthenticatedContext, document: DocumentNode, operationName?: string | null): void {
  if (context.rejectedCredential) throw unauthenticated('The API token is invalid, expired or revoked');
  if (!context.principal && !isIntrospectionOnly(document, operationName)) {
    throw unauthenticated('Authentication required: send Authorization: Bearer <token>');
  }
}

/**
 * `streams`: subscriptions over HTTP are handed to it, to end when their token stops authenticating. Over
 * WebSocket the connection is closed then instead (subscriptions.ts), and one execution may serve sockets of
 * several tokens, so those are left alone.
 */
export function useAuthentication(streams: TokenStreams): Plugin {
  return {
    onExecute({ args }) {
      check(args.contextValue as unknown as AuthenticatedContext, args.document, args.operationName);
    },
    onSubscribe({ args }) {
      // `res`: the Node response of an HTTP request (Yoga's server context), whose close gives the stream's place back.
      const context = args.contextValue as unknown as AuthenticatedContext & { connectionParams?: unknown; res?: ServerResponse };
      check(context, args.document, args.operationName);
      const tokenId = context.principal?.tokenId;
      if (!tokenId || context.connectionParams !== undefined) return undefined;
      streams.reserve(tokenId, context.res);
      return {
        onSubscribeResult({ result, setResult }) {
          if (isAsyncIterable(result)) setResult(streams.watch(tokenId, result));
        },
      };
    },
  };
}
