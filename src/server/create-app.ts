// The HTTP server: GraphQL (Yoga) at /graphql over HTTP and WebSocket (graphql-ws), health endpoints, and a
// JSON 404 for everything else.
// Webhook and artifact routes join here in later work; Caddy sits in front in production.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { bearerToken, createContext, type Context } from '../context.js';
import { can } from '../domain/auth/permissions.js';
import type { Principal } from '../domain/auth/principal.js';
import type { TaskEventFeed } from '../events/task-event-feed.js';
import { runWithRequestId } from '../request-context.js';
import { getSchema } from '../schema/index.js';
import type { Services } from '../services.js';
import { useAuthentication } from './authentication.js';
import { handleWebhook } from '../webhooks/webhook-route.js';
import { serveArtifact } from './artifact-route.js';
import { checkReadiness } from './health.js';
import { checkGraphqlBody, graphqlFetchApi, isMultipart, maxBodyBytes, useBodyLimitErrors, type GraphqlBodyLimits } from './graphql-body.js';
import { maskError, useValidationRedaction } from './mask-error.js';
import { addressRanges } from '../net/address-ranges.js';
import { clientAddress, limitedAddress, RateLimiter, tokenKey, type RateDecision } from './rate-limiter.js';
import { useOperationLimits, type OperationLimits } from './operation-limits.js';
import { startReplicaHeartbeat } from './replica-heartbeat.js';
import { startDeliveryPruning } from './delivery-pruning.js';
import { startSecretSweep } from './secret-sweep.js';
import { useStorableStrings } from './storable-strings.js';
import { TokenStreams } from './token-streams.js';
import { TokenWatch } from './token-watch.js';
import { attachSubscriptions, type SubscriptionLimits } from './subscriptions.js';

export interface AppOptions {
  services: Services;
  redis: Redis;
  logger: Logger;
  graphiql: boolean;
  /** Where live task events come from: this replica's subscriber on the shared Redis. */
  feed: TaskEventFeed;
  subscriptionLimits?: Partial<SubscriptionLimits>;
  /** Key prefix shared with workers, for this replica's heartbeat. */
  prefix: string;
  heartbeatMs?: number;
  /** Largest webhook body accepted. */
  webhookMaxBytes?: number;
  /** Recorded webhook deliveries are deleted after this many days; 0 (the default here) keeps them. */
  webhookDeliveryRetentionDays?: number;
  /** Largest /graphql body, and largest uploaded file (see graphql-body.ts). */
  bodyLimits?: Partial<GraphqlBodyLimits>;
  operationLimits?: Partial<OperationLimits>;
  /** Requests per minute: per token (or client address) for /graphql, per client address for webhooks. */
  rateLimits?: { api: number; webhooks: number };
  /** Addresses of proxies (Caddy) whose X-Forwarded-For is believed (a well-formed X-Request-Id is kept from anyone). */
  trustedProxies?: string[];
}

/** How often each replica sweeps secrets that an interrupted write or deletion left (domain/secret-writes.ts). */
const secretSweepMs = 5 * 60_000;

/** How often each replica deletes webhook deliveries past their retention (counted in days). */
const deliveryPruningMs = 3_600_000;

const defaultBodyLimits: GraphqlBodyLimits = { maxRequestBytes: 1024 * 1024, maxUploadBytes: 100 * 1024 * 1024 };

/** Token look-ups an address may cause a minute, per request the API limit allows it (see mayLookUp). */
const lookupsPerRequest = 4;

const defaultOperationLimits: OperationLimits = { maxDepth: 15, maxAliases: 30, maxFields: 1000, maxNodes: 50_000, maxTokens: 5000, maxNesting: 100, introspection: true };

const defaultSubscriptionLimits: Omit<SubscriptionLimits, 'maxMessageBytes'> = {
  maxSubscriptionsPerConnection: 20,
  maxBufferedBytes: 4 * 1024 * 1024,
  revalidateMs: 30_000,
  maxConnectionsPerToken: 20,
};

export interface App {
  server: Server;
  yoga: YogaServerInstance<ServerContext, Context>;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Open WebSocket connections, and subscription executions shared among them. */
  subscriptionStats(): { connections: number; sharedExecutions: number };
  /** Stops accepting connections and waits for in-flight requests. */
  close(): Promise<void>;
}

/** What an operation starts from: an HTTP request, or a WebSocket connection's params. */
interface ServerContext {
  requestId: string;
  connectionParams?: Record<string, unknown>;
  principal?: Principal;
}

/** Accept a request id when it looks like one (Caddy sets it); otherwise make our own. */
function requestIdFrom(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
}

/** An answer before Yoga: shaped as a GraphQL response for /graphql, as `{ error }` elsewhere. */
function refuse(res: ServerResponse, status: number, code: string, message: string, graphql: boolean): void {
  sendJson(res, status, graphql ? { errors: [{ message, extensions: { code } }] } : { error: { code, message } });
}

function tooManyRequests(res: ServerResponse, retryAfterSeconds: number, graphql: boolean): void {
  res.setHeader('retry-after', String(retryAfterSeconds));
  refuse(res, 429, 'RATE_LIMITED', `Rate limit exceeded; retry in ${retryAfterSeconds} s`, graphql);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function createApp(options: AppOptions): App {
  const { services, redis, logger } = options;
  const bodyLimits = { ...defaultBodyLimits, ...options.bodyLimits };
  const subscriptionLimits = { ...defaultSubscriptionLimits, maxMessageBytes: bodyLimits.maxRequestBytes, ...options.subscriptionLimits };
  const tokenWatch = new TokenWatch(services.tokens, subscriptionLimits.revalidateMs);
  const tokenStreams = new TokenStreams(tokenWatch, subscriptionLimits.maxConnectionsPerToken);
  const yoga = createYoga<ServerContext, Context>({
    schema: getSchema(),
    graphqlEndpoint: '/graphql',
    graphiql: options.graphiql ? { title: 'Switchyard', headers: '{\n  "Authorization": "Bearer syt_…"\n}' } : false,
    landingPage: false,
    maskedErrors: { maskError },
    fetchAPI: graphqlFetchApi(bodyLimits),
    // Yoga caps every body at 25 MB unless told: the largest upload must fit (checkGraphqlBody enforces the limits).
    maxRequestBodySize: maxBodyBytes(bodyLimits, true),
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error({ err: args.find((a) => a instanceof Error) }, args.map(String).join(' ')),
    },
    context: ({ request, requestId, connectionParams, principal }) =>
      createContext({
        principal,
        authorization: connectionParams
          ? typeof connectionParams.authorization === 'string'
            ? connectionParams.authorization
            : null
          : request.headers.get('authorization'),
        requestId,
        services,
        feed: options.feed,
        logger,
      }),
    // Order matters among hooks that may end an operation early (which skips the later ones): authentication comes
    // before the string check, so a request without a valid token learns nothing but that.
    plugins: [useBodyLimitErrors(bodyLimits), useOperationLimits({ ...defaultOperationLimits, ...options.operationLimits }), useAuthentication(tokenStreams), useStorableStrings(), useValidationRedaction()],
  });

  // Webhook sources and rules, or notification subscribers, changed on any replica: drop this replica's cached
  // copy at once (the caches' time limits cover a missed announcement; see webhook-source-cache.ts and
  // notification-service.ts). A token revoked on any replica ends this replica's subscriptions of it (WebSocket and HTTP).
  const stopControl = options.feed.onControl((message) => {
    if (message.type === 'webhook-source-changed') services.webhooks.forgetSource(message.sourceId);
    else if (message.type === 'notification-subscribers-changed') services.notifications.forgetSubscribers();
    else if (message.type === 'token-revoked') tokenWatch.end(message.tokenId);
  });

  const limiter = new RateLimiter(redis, options.prefix);
  const rateLimits = options.rateLimits ?? { api: 0, webhooks: 0 };
  const trusted = addressRanges(options.trustedProxies ?? []);
  // A bearer token the principal cache does not hold costs a query to look up, before the rate limit can even
  // choose its budget: a made-up token per request (or per WebSocket connect) would cost the database one each,
  // however far over its limit the client is. So look-ups that query have a budget per client address of their
  // own, lookupsPerRequest times the API limit a minute; past it, a request's token counts as none (the address
  // pays; an upload, which must be authenticated before its body, waits) and a connect is refused. A real token
  // the replica has not looked up in the last 10 s, from an address that is flooding, waits with it.
  const lookupBudget = (address: string): Promise<RateDecision> => limiter.hit('lookup', address, rateLimits.api * lookupsPerRequest);
  const mayLookUp = async (req: IncomingMessage): Promise<boolean> => (await lookupBudget(`ip:${limitedAddress(clientAddress(req, trusted))}`)).allowed;

  // 15 minutes to receive a request, body included (Node's default is 5): a 100 MiB upload over a slow link. The
  // edge (Caddyfile, read_body) allows as long.
  const server = createServer({ requestTimeout: 15 * 60_000 }, (req, res) => {
    const requestId = requestIdFrom(req);
    res.setHeader('x-request-id', requestId);
    const path = (req.url ?? '/').split('?')[0];
    runWithRequestId(requestId, () => {
      if (path === '/graphql') {
        const token = bearerToken(req.headers.authorization);
        const address = `ip:${limitedAddress(clientAddress(req, trusted))}`;
        // The token's principal, through the cache WebSocket connects use, looked up if a check below needs it (a
        // made-up token is not cached: each look-up is a query, within the address's lookupBudget). It only decides
        // these checks: the context authenticates the request itself, after its body (an upload can stream for
        // minutes, and a token revoked meanwhile must not run it).
        const upload = isMultipart(req);
        const lookUp = async (): Promise<{ principal: Principal | null } | { retryAfterSeconds: number }> => {
          if (!token || !(rateLimits.api > 0 || upload)) return { principal: null };
          if (subscriptions.wouldQuery(token)) {
            const budget = await lookupBudget(address);
            if (!budget.allowed) return upload ? { retryAfterSeconds: budget.retryAfterSeconds } : { principal: null };
          }
          return { principal: await subscriptions.authenticate(token) };
        };
        void lookUp()
          .then(async (looked) => {
            if ('retryAfterSeconds' in looked) return tooManyRequests(res, looked.retryAfterSeconds, true);
            const { principal } = looked;
            // A bearer value that does not authenticate has no budget of its own (a made-up one per request would be
            // a fresh budget each time): it counts against the client address, as a request without one does.
            const decision = await limiter.hit('api', principal ? `t:${tokenKey(token!)}` : address, rateLimits.api);
            if (!decision.allowed) return tooManyRequests(res, decision.retryAfterSeconds, true);
            // A multipart request (an upload) is read whole before its operation runs, the file kept in memory by
            // Yoga's form-data parser: one from a caller who could not upload anyway is refused before its body, or
            // anyone could make a replica hold ~100 MiB per request. The context still authenticates it after.
            if (upload) {
              if (!principal) {
                res.setHeader('www-authenticate', 'Bearer');
                return refuse(res, 401, 'UNAUTHENTICATED', 'A multipart request (an upload) needs a valid API token', true);
              }
              if (!can(principal.role, 'submitTasks')) return refuse(res, 403, 'FORBIDDEN', 'A multipart request (an upload) needs a role that may submit tasks', true);
            }
            const refusal = await checkGraphqlBody(req, bodyLimits);
            if (refusal) return refuse(res, refusal.status, refusal.code, refusal.message, true);
            void yoga(req, res, { requestId });
          })
          .catch((error) => {
            // A client that went away mid-body (its request errors with "aborted") is no server failure.
            if (req.destroyed) return;
            logger.error({ err: error }, 'graphql request failed before execution');
            if (!res.headersSent) refuse(res, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error', true);
          });
        return;
      }
      if (path?.startsWith('/webhooks/')) {
        const deps = { webhooks: services.webhooks, redis, prefix: options.prefix, maxBodyBytes: options.webhookMaxBytes ?? 1024 * 1024, logger };
        // Per sender address: the source id in the URL is the sender's choice, so it cannot be the key.
        const key = limitedAddress(clientAddress(req, trusted));
        void limiter
          .hit('webhooks', key, rateLimits.webhooks)
          .then((decision) => (decision.allowed ? handleWebhook(req, res, path, deps, sendJson) : tooManyRequests(res, decision.retryAfterSeconds, false)))
          .catch((error) => {
          logger.error({ err: error }, 'webhook handling failed');
          if (!res.headersSent) refuse(res, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error', false);
        });
        return;
      }
      if (path?.startsWith('/artifacts/')) {
        void serveArtifact(req, res, path.slice('/artifacts/'.length), services, sendJson).catch((error) => {
          logger.error({ err: error }, 'artifact download failed');
          if (!res.headersSent) refuse(res, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error', false);
        });
        return;
      }
      if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        sendJson(res, 200, { status: 'ok' });
        return;
      }
      if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
        void checkReadiness(services.prisma, redis).then((readiness) => {
          sendJson(res, readiness.ready ? 200 : 503, { status: readiness.ready ? 'ready' : 'unavailable', ...readiness });
        });
        return;
      }
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `No route for ${req.method} ${path}` } });
    });
  });

  const subscriptions = attachSubscriptions(server, yoga, {
    services,
    tokenWatch,
    logger,
    limits: subscriptionLimits,
    rateLimit: (key) => limiter.hit('api', key, rateLimits.api),
    mayLookUp,
  });

  let stopHeartbeat: (() => Promise<void>) | null = null;
  let stopSecretSweep: (() => Promise<void>) | null = null;
  let stopDeliveryPruning: (() => Promise<void>) | null = null;

  return {
    server,
    yoga,
    subscriptionStats: () => ({ connections: subscriptions.connections(), sharedExecutions: subscriptions.sharedExecutions() }),
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          stopHeartbeat = startReplicaHeartbeat(redis, options.prefix, `${hostname()}:${process.pid}:${address.port}`, options.heartbeatMs ?? 5000, () => subscriptions.connections());
          stopSecretSweep = startSecretSweep(options.services.secretWrites, logger, secretSweepMs);
          stopDeliveryPruning = startDeliveryPruning(services, logger, options.webhookDeliveryRetentionDays ?? 0, deliveryPruningMs);
          resolve(address);
        });
      }),
    close: async () => {
      await stopHeartbeat?.();
      await stopSecretSweep?.();
      await stopDeliveryPruning?.();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await subscriptions.close();
      tokenStreams.closeAll();
      await stopControl();
      tokenWatch.close();
      // The close waits for open connections; one whose last request ends from now on (a subscription stream
      // that closeAll just ended) would otherwise stay open, idle, until its keep-alive timeout.
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 100);
      await closed.finally(() => clearInterval(idle));
    },
  };
}
