// graphql-ws on the same HTTP server and path as /graphql. Every operation goes through Yoga's envelop
// (yoga.getEnveloped), so context, plugins, authentication and field authorisation are the HTTP ones.
// Connections authenticate once with connectionParams { authorization: "Bearer …" }; a missing or bad
// token closes the socket with 4403 Forbidden, and so does revoking the token later. A client that does not
// read fast enough is disconnected rather than buffered without bound.
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { GraphQLError, Kind, type DocumentNode, type ExecutionArgs, type OperationDefinitionNode } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { bearerToken, type Context } from '../context.js';
import type { Principal } from '../domain/auth/principal.js';
import type { TaskEventFeed } from '../events/task-event-feed.js';
import type { Services } from '../services.js';
import { SharedSubscriptions, type CatchUp } from './shared-subscriptions.js';

/** How a subscriber joining a shared execution of each subscription field catches up. */
const catchUpByField: Record<string, CatchUp> = { taskEvents: 'replay', resourceUtilization: 'latest' };

function rootFieldName(document: DocumentNode): string | undefined {
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const first = operation?.selectionSet.selections[0];
  return first?.kind === Kind.FIELD ? first.name.value : undefined;
}

export interface SubscriptionLimits {
  maxSubscriptionsPerConnection: number;
  /** Bytes the server may queue for one socket before it gives up on the client. */
  maxBufferedBytes: number;
  /** How often open connections re-check that their token is still valid. */
  revalidateMs: number;
  /** Open connections one token may hold on this replica. */
  maxConnectionsPerToken: number;
}

type SocketExtra = {
  socket: WebSocket;
  principal?: Principal;
} & Record<PropertyKey, unknown>;

export const slowClientCloseCode = 1008;

export function attachSubscriptions(
  server: Server,
  yoga: YogaServerInstance<any, Context>,
  deps: { services: Services; feed: TaskEventFeed; logger: Logger; limits: SubscriptionLimits },
): { close(): Promise<void>; connections(): number; sharedExecutions(): number } {
  const { services, logger, limits } = deps;
  const wsServer = new WebSocketServer({ server, path: '/graphql' });
  const shared = new SharedSubscriptions();
  /** Sharing key per operation: same role, document and variables produce the same results. */
  const shareKeys = new WeakMap<object, string>();
  /** The socket each operation's context belongs to, to disconnect a subscriber that falls too far behind. */
  const socketOf = new WeakMap<object, WebSocket>();
  const tooSlow = (socket: WebSocket | undefined) => () => {
    logger.warn('closing a subscription socket whose client is not reading (results queued)');
    socket?.close(slowClientCloseCode, 'Client too slow: too many unread messages');
  };
  const byToken = new Map<string, Set<WebSocket>>();

  const forget = (extra: SocketExtra) => {
    const tokenId = extra.principal?.tokenId;
    if (!tokenId) return;
    byToken.get(tokenId)?.delete(extra.socket);
    if (byToken.get(tokenId)?.size === 0) byToken.delete(tokenId);
  };

  const disposable = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      execute: (args: ExecutionArgs) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args: ExecutionArgs) => {
        const run = () => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never;
        const key = shareKeys.get(args.contextValue as object);
        if (!key) return run();
        const socket = socketOf.get(args.contextValue as object);
        return shared.subscribe(key, catchUpByField[rootFieldName(args.document) ?? ''] ?? 'live', run, tooSlow(socket)) as never;
      },
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const value = params.authorization ?? params.Authorization;
        const token = bearerToken(typeof value === 'string' ? value : null);
        const principal = token ? await services.tokens.authenticate(token) : null;
        if (!principal) return false; // 4403 Forbidden
        if (principal.tokenId && (byToken.get(principal.tokenId)?.size ?? 0) >= limits.maxConnectionsPerToken) {
          ctx.extra.socket.close(4429, `At most ${limits.maxConnectionsPerToken} connections per token`);
          return false;
        }
        ctx.extra.principal = principal;
        if (principal.tokenId) {
          const sockets = byToken.get(principal.tokenId) ?? new Set();
          sockets.add(ctx.extra.socket);
          byToken.set(principal.tokenId, sockets);
          // On the socket's own close: graphql-ws's onClose waits until every subscription has wound down.
          ctx.extra.socket.once('close', () => forget(ctx.extra));
        }
        return true;
      },
      onClose: (ctx) => forget(ctx.extra),
      onSubscribe: async (ctx, _id, payload) => {
        // graphql-ws registers this subscription's id before calling onSubscribe, so it is already counted.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`At most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ];
        }
        const requestId = randomUUID();
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          connectionParams: ctx.connectionParams,
          principal: ctx.extra.principal,
          requestId,
          params: payload,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const contextValue = await contextFactory();
        const role = ctx.extra.principal?.role;
        if (role) shareKeys.set(contextValue, JSON.stringify([role, payload.operationName ?? null, payload.query, payload.variables ?? null]));
        socketOf.set(contextValue, ctx.extra.socket);
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
      onNext: (ctx) => {
        if (ctx.extra.socket.bufferedAmount > limits.maxBufferedBytes) {
          logger.warn({ bufferedBytes: ctx.extra.socket.bufferedAmount }, 'closing a subscription socket whose client is not reading');
          ctx.extra.socket.close(slowClientCloseCode, 'Client too slow: too many unread messages');
        }
      },
    },
    wsServer,
  );

  const closeToken = (tokenId: string) => {
    for (const socket of byToken.get(tokenId) ?? []) socket.close(CloseCode.Forbidden, 'Token revoked');
    byToken.delete(tokenId);
  };

  // Revocations announced by any replica close this replica's sockets of that token at once…
  const control = deps.feed.control();
  void (async () => {
    for await (const message of control) if (message.type === 'token-revoked') closeToken(message.tokenId);
  })().catch(() => undefined);

  // …and a periodic re-check catches what the announcement cannot: expiry, revocations from the CLI.
  const revalidate = setInterval(() => {
    void (async () => {
      for (const tokenId of [...byToken.keys()]) {
        const token = await services.tokens.find(tokenId).catch(() => undefined);
        if (token === undefined) continue; // database hiccup: try again next time
        if (!token || token.revokedAt || (token.expiresAt && token.expiresAt.getTime() <= Date.now())) closeToken(tokenId);
      }
    })();
  }, limits.revalidateMs);
  revalidate.unref();

  return {
    connections: () => wsServer.clients.size,
    sharedExecutions: () => shared.size,
    async close() {
      clearInterval(revalidate);
      await control.return?.();
      for (const socket of wsServer.clients) socket.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
