// graphql-ws on the same HTTP server and path as /graphql. Every operation goes through Yoga's envelop
// (yoga.getEnveloped), so context, plugins, authentication and field authorisation are the HTTP ones.
// Connections authenticate once with connectionParams { authorization: "Bearer …" }; a missing or bad
// token closes the socket with 4403 Forbidden, and so does revoking the token later. A client that does not
// read fast enough is disconnected rather than buffered without bound.
import type { IncomingMessage, Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { bearerToken, type Context } from '../context.js';
import type { Principal } from '../domain/auth/principal.js';
import type { Services } from '../services.js';
import { ConnectionPrincipals } from './connection-principals.js';
import { rootFields } from './root-fields.js';
import { tokenKey, type RateDecision } from './rate-limiter.js';
import { shareKey } from './share-key.js';
import { maxReplayBuffer, SharedSubscriptions, type CatchUp } from './shared-subscriptions.js';
import { SocketSubscriber } from './socket-subscriber.js';
import type { TokenWatch } from './token-watch.js';

/** How a subscriber joining a shared execution of each subscription field catches up. */
const catchUpByField: Record<string, CatchUp> = { taskEvents: 'replay', resourceUtilization: 'latest' };

/** The root field of the subscription that runs (a subscription has exactly one: validation sees to it). */
function rootFieldName(document: DocumentNode, operationName: string | null | undefined): string | undefined {
  return rootFields(document, operationName)?.fields.find((field) => field.name.value !== '__typename')?.name.value;
}

export interface SubscriptionLimits {
  maxSubscriptionsPerConnection: number;
  /** Bytes the server may queue for one socket before it gives up on the client. */
  maxBufferedBytes: number;
  /** How often open connections re-check that their token is still valid. */
  revalidateMs: number;
  /** Open connections one token may hold on this replica. */
  maxConnectionsPerToken: number;
  /** Largest message a client may send (ws closes the socket with 1009 otherwise): as for an HTTP request body. */
  maxMessageBytes: number;
}

type SocketExtra = {
  socket: WebSocket;
  principal?: Principal;
  /** The connection's token, as the HTTP rate limit keys it. */
  rateKey?: string;
  /** Stops the token watch from closing this socket. */
  unwatch?: () => void;
} & Record<PropertyKey, unknown>;

export const slowClientCloseCode = 1008;

/** How long a token lookup on connect is reused (at most the re-check interval). */
const principalCacheMs = 10_000;

export function attachSubscriptions(
  server: Server,
  yoga: YogaServerInstance<any, Context>,
  deps: {
    services: Services;
    tokenWatch: TokenWatch;
    logger: Logger;
    limits: SubscriptionLimits;
    /** Counts one operation against the API rate limit, under the key HTTP requests with the same token use. */
    rateLimit: (key: string) => Promise<RateDecision>;
    /** Whether a token look-up that would query the database may be made for this request's client (create-app.ts). */
    mayLookUp: (request: IncomingMessage) => Promise<boolean>;
  },
): {
  close(): Promise<void>;
  connections(): number;
  sharedExecutions(): number;
  /** Who a bearer token stands for, through the same short-lived cache as WebSocket connects. */
  authenticate(token: string): Promise<Principal | null>;
  /** Whether `authenticate` would query the database for this token now (see ConnectionPrincipals.wouldQuery). */
  wouldQuery(token: string): boolean;
} {
  const { services, logger, limits } = deps;
  const wsServer = new WebSocketServer({ server, path: '/graphql', maxPayload: deps.limits.maxMessageBytes });
  const shared = new SharedSubscriptions((error) => logger.error({ err: error }, 'a shared subscription failed'));
  /**
   * Per operation (by its context): the sharing key (same role, operation and variables produce the same
   * results), and the socket and subscription id its shared results are written to.
   */
  const sharing = new WeakMap<object, { key: string; socket: WebSocket; id: string }>();
  const tooSlow = (socket: WebSocket) => (unsentBytes: number) => {
    logger.warn({ bufferedBytes: unsentBytes }, 'closing a subscription socket whose client is not reading');
    socket.close(slowClientCloseCode, 'Client too slow: too many unread messages');
  };
  const subscriberLimits = {
    maxBufferedBytes: limits.maxBufferedBytes,
    // A joiner's whole catch-up fits, with room for what arrives while it is written.
    maxQueued: maxReplayBuffer + 1000,
  };
  const byToken = new Map<string, Set<WebSocket>>();
  /** Token lookups on connect, remembered briefly (see connection-principals.ts for what keeps that safe). */
  const principals = new ConnectionPrincipals((token) => services.tokens.authenticateWithExpiry(token), Math.min(principalCacheMs, limits.revalidateMs));

  const forget = (extra: SocketExtra) => {
    const tokenId = extra.principal?.tokenId;
    if (!tokenId) return;
    extra.unwatch?.();
    byToken.get(tokenId)?.delete(extra.socket);
    if (byToken.get(tokenId)?.size === 0) byToken.delete(tokenId);
  };

  const disposable = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      execute: (args: ExecutionArgs) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: async (args: ExecutionArgs) => {
        const run = () => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never;
        const target = sharing.get(args.contextValue as object);
        if (!target) return run();
        // Shared results bypass graphql-ws's per-subscriber sending (see socket-subscriber.ts); graphql-ws gets
        // an iterator that ends with the subscription, and sends `complete` then.
        const field = rootFieldName(args.document, args.operationName);
        if (!field) return run();
        const subscriber = new SocketSubscriber(target.socket, target.id, subscriberLimits, tooSlow(target.socket));
        const joined = await shared.subscribe(target.key, catchUpByField[field] ?? 'live', run, subscriber);
        if ('error' in joined) return joined.error as never;
        subscriber.attach(joined.leave);
        return subscriber as never;
      },
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const value = params.authorization ?? params.Authorization;
        const token = bearerToken(typeof value === 'string' ? value : null);
        // A made-up token per connect would cost the database a query each: the client's address pays for look-ups.
        if (token && principals.wouldQuery(token) && !(await deps.mayLookUp(ctx.extra.request))) {
          ctx.extra.socket.close(4429, 'Too many token look-ups from this address; retry later');
          return false;
        }
        const principal = token ? await principals.authenticate(token) : null;
        if (!principal) return false; // 4403 Forbidden
        // Closed while its token was looked up: graphql-ws has already run onClose, and nothing would release a
        // slot taken now.
        if (ctx.extra.socket.readyState !== WebSocket.OPEN) return false;
        ctx.extra.rateKey = `t:${tokenKey(token!)}`;
        if (principal.tokenId && (byToken.get(principal.tokenId)?.size ?? 0) >= limits.maxConnectionsPerToken) {
          ctx.extra.socket.close(4429, `At most ${limits.maxConnectionsPerToken} connections per token`);
          return false;
        }
        ctx.extra.principal = principal;
        if (principal.tokenId) {
          const sockets = byToken.get(principal.tokenId) ?? new Set();
          sockets.add(ctx.extra.socket);
          byToken.set(principal.tokenId, sockets);
          const socket = ctx.extra.socket;
          ctx.extra.unwatch = deps.tokenWatch.add(principal.tokenId, () => socket.close(CloseCode.Forbidden, 'Token revoked'));
          // On the socket's own close: graphql-ws's onClose waits until every subscription has wound down.
          ctx.extra.socket.once('close', () => forget(ctx.extra));
        }
        return true;
      },
      onClose: (ctx) => forget(ctx.extra),
      onSubscribe: async (ctx, id, payload) => {
        // graphql-ws registers this subscription's id before calling onSubscribe, so it is already counted.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptionsPerConnection) {
          return [
            new GraphQLError(`At most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ];
        }
        // Operations over a WebSocket count against the token's API rate limit, as HTTP requests do.
        const decision = ctx.extra.rateKey ? await deps.rateLimit(ctx.extra.rateKey) : ({ allowed: true } as const);
        if (!decision.allowed) {
          return [
            new GraphQLError(`Rate limit exceeded; retry in ${decision.retryAfterSeconds} s`, {
              extensions: { code: 'RATE_LIMITED', retryAfterSeconds: decision.retryAfterSeconds },
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
        if (role) sharing.set(contextValue, { key: shareKey(role, payload), socket: ctx.extra.socket, id });
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue,
          rootValue: { execute, subscribe },
        };
      },
      // Results of operations that are not shared (queries, mutations) still go through graphql-ws's sending.
      onNext: (ctx) => {
        const unsent = ctx.extra.socket.bufferedAmount;
        if (unsent > limits.maxBufferedBytes) tooSlow(ctx.extra.socket)(unsent);
      },
    },
    wsServer,
  );

  // A token that stops authenticating (the TokenWatch closes its sockets) leaves the principal cache at once…
  const stopForgetting = deps.tokenWatch.onEnd((tokenId) => principals.forget(tokenId));
  // …and stale entries go now and then.
  const sweep = setInterval(() => principals.sweep(), limits.revalidateMs);
  sweep.unref();

  return {
    connections: () => wsServer.clients.size,
    sharedExecutions: () => shared.size,
    authenticate: (token) => principals.authenticate(token),
    wouldQuery: (token) => principals.wouldQuery(token),
    async close() {
      clearInterval(sweep);
      stopForgetting();
      for (const socket of wsServer.clients) socket.close(1001, 'Server shutting down');
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
