// A real Switchyard API for one test file: its own Postgres schema, its own Redis key prefix, a random
// secret key, and an HTTP server on a free port. Nothing is mocked.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { createPrisma, type PrismaClient } from '../../src/db/prisma.js';
import { cliPrincipal } from '../../src/domain/auth/principal.js';
import type { Role } from '../../src/generated/prisma/enums.js';
import { RedisTaskEventPublisher } from '../../src/events/task-event-bus.js';
import { TaskEventFeed } from '../../src/events/task-event-feed.js';
import { TaskQueues } from '../../src/queues/task-queues.js';
import { createCommandRedis, waitForRedis } from '../../src/redis.js';
import { BuiltinSecretStore } from '../../src/secrets/builtin-store.js';
import type { SecretStore } from '../../src/secrets/secret-store.js';
import { createApp, type App, type AppOptions } from '../../src/server/create-app.js';
import type { SubscriptionLimits } from '../../src/server/subscriptions.js';
import { createServices, type Services } from '../../src/services.js';
import { captureLogger } from './capture-logger.js';

export const testDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/switchyard_test';
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface GraphQLResponse<T = any> {
  status: number;
  headers: Headers;
  body: { data?: T; errors?: Array<{ message: string; path?: string[]; extensions?: Record<string, unknown> }> };
}

export interface TestApi {
  url: string;
  redisUrl: string;
  databaseUrl: string;
  schema: string;
  queuePrefix: string;
  prisma: PrismaClient;
  redis: Redis;
  services: Services;
  queues: TaskQueues;
  app: App;
  logLines: string[];
  /** Creates a token with the role and returns the bearer secret. */
  token(role: Role, options?: { name?: string; expiresAt?: Date }): Promise<string>;
  gql<T = any>(query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GraphQLResponse<T>>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  /**
   * Point Redis somewhere else: a closed port to simulate an outage (the harness then does not wait for
   * it), or another database index (redis://127.0.0.1:6379/5) for tests that flush Redis.
   */
  redisUrl?: string;
  /** Wait for Redis even though redisUrl is given (it is expected to be reachable). */
  waitForRedis?: boolean;
  subscriptionLimits?: Partial<SubscriptionLimits>;
  /** The built-in store's 32-byte key (random by default), e.g. to share it with a worker process. */
  secretKey?: Buffer;
  /** Builds the secret store instead of the built-in one (e.g. a VaultSecretStore). */
  secrets?: (prisma: PrismaClient) => SecretStore;
  /**
   * Another replica of that API: reuses its Postgres schema, BullMQ/Redis prefix and secret store key (or
   * store factory) instead of creating new ones, and leaves the schema and keys alone on close.
   */
  shareWith?: TestApi;
  /** Queue an ORG_CHECK on registerOrg/rotateOrgCredentials, as production does (off by default in tests). */
  checkOrgsOnRegister?: boolean;
  /** SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS (this machine's loopback by default: test receivers listen there). */
  notificationAllowedNetworks?: string[];
  /** Rate limits, operation limits, trusted proxies… as `switchyard serve` would pass them. */
  app?: Pick<AppOptions, 'rateLimits' | 'operationLimits' | 'trustedProxies' | 'webhookMaxBytes' | 'webhookDeliveryRetentionDays' | 'bodyLimits'>;
}

/** What a replica started with `shareWith` needs from the API it joins. */
const sharedSetup = new WeakMap<TestApi, { secretKey: Buffer; secrets?: (prisma: PrismaClient) => SecretStore }>();

export async function startTestApi(name: string, options: TestApiOptions = {}): Promise<TestApi> {
  const shared = options.shareWith ? sharedSetup.get(options.shareWith) : undefined;
  if (options.shareWith && !shared) throw new Error('shareWith: not an API started by startTestApi');
  const suffix = randomBytes(4).toString('hex');
  const schema = options.shareWith?.schema ?? `t_${name.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${suffix}`;
  const databaseUrl = options.shareWith?.databaseUrl ?? `${testDatabaseUrl}?schema=${schema}`;
  if (!options.shareWith) await migrate(databaseUrl);
  const { logger, lines } = captureLogger();
  const prisma = createPrisma(databaseUrl, { poolSize: 5 });
  const redisUrl = options.redisUrl ?? options.shareWith?.redisUrl ?? testRedisUrl;
  const redis = createCommandRedis(redisUrl, logger);
  if (!options.redisUrl || options.waitForRedis) await waitForRedis(redis, 5000);
  const queuePrefix = options.shareWith?.queuePrefix ?? `sytest-${name}-${suffix}`;
  const secretKey = options.secretKey ?? shared?.secretKey ?? randomBytes(32);
  const secretsFactory = options.secrets ?? shared?.secrets;
  const queues = new TaskQueues(redis, queuePrefix);
  const services = createServices({
    prisma,
    secrets: secretsFactory?.(prisma) ?? new BuiltinSecretStore(prisma, secretKey),
    queues,
    publisher: new RedisTaskEventPublisher(redis, queuePrefix),
    redis,
    prefix: queuePrefix,
    artifactDir: mkdtempSync(path.join(tmpdir(), `sy-artifacts-${suffix}-`)),
    maxUploadBytes: options.app?.bodyLimits?.maxUploadBytes ?? 10 * 1024 * 1024,
    checkOrgsOnRegister: options.checkOrgsOnRegister ?? false,
    webhookStoredPayloadBytes: 64 * 1024,
    // The recurring-task tests fire every second.
    scheduleMinIntervalSeconds: 1,
    notificationAllowedNetworks: options.notificationAllowedNetworks ?? ['127.0.0.0/8', '::1'],
    logger,
  });
  const feed = new TaskEventFeed(redisUrl, queuePrefix);
  const app = createApp({ services, redis, logger, graphiql: true, feed, prefix: queuePrefix, heartbeatMs: 500, subscriptionLimits: options.subscriptionLimits, ...options.app, bodyLimits: { maxUploadBytes: 10 * 1024 * 1024, ...options.app?.bodyLimits } });
  const address = await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;

  let tokenCount = 0;
  const api: TestApi = {
    url,
    redisUrl,
    databaseUrl,
    schema,
    queuePrefix,
    prisma,
    redis,
    services,
    queues,
    app,
    logLines: lines,
    async token(role, opts = {}) {
      tokenCount += 1;
      const { secret } = await services.tokens.create(cliPrincipal, {
        name: opts.name ?? `${role.toLowerCase()}-${tokenCount}`,
        role,
        userName: `${role.toLowerCase()}-user`,
        expiresAt: opts.expiresAt,
      });
      return secret;
    },
    async gql(query, variables, token) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] };
    },
    async close() {
      await app.close();
      feed.close();
      await queues.close();
      if (!options.shareWith) await deleteKeys(redisUrl, queuePrefix);
      redis.disconnect();
      await prisma.$disconnect();
      if (!options.shareWith) await dropSchema(schema);
    },
  };
  sharedSetup.set(api, { secretKey, secrets: secretsFactory });
  return api;
}

async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  // Gives up at once when Redis is unreachable (tests that simulate an outage have nothing to clean).
  const redis = new Redis(redisUrl, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch {
    // unreachable: nothing to clean
  } finally {
    redis.disconnect();
  }
}

/** Runs one SQL statement on its own connection (to `connectionString`, the test database by default). */
export async function queryDatabase<T extends pg.QueryResultRow>(sql: string, connectionString = testDatabaseUrl, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Drops a test's Postgres schema and everything in it (no error when it does not exist). */
export async function dropSchema(schema: string): Promise<void> {
  await queryDatabase(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** Common GraphQL selections for mutation results. */
export const errorFields = '... on Error { code message } ... on ValidationError { fieldErrors { path message } }';

/**
 * Sends each of `requests` (a mutation, its variables, and the field that holds its result) at the same time and
 * answers each result, in the order given. A top-level error (an unexpected error is masked as one) throws,
 * showing every answer.
 */
export async function concurrently(
  api: TestApi,
  token: string,
  requests: Array<{ query: string; variables: Record<string, unknown>; field: string }>,
): Promise<any[]> {
  const responses = await Promise.all(requests.map(({ query, variables }) => api.gql(query, variables, token)));
  if (responses.some((res) => res.body.errors)) throw new Error(`GraphQL errors: ${JSON.stringify(responses.map((res) => res.body))}`);
  return responses.map((res, i) => res.body.data[requests[i]!.field]);
}

/** Audit entries (newest first) about one target, as an OWNER sees them through `auditEntries`. */
export async function auditEntriesFor(api: TestApi, owner: string, targetId: string): Promise<Array<{ action: string; targetId: string }>> {
  const res = await api.gql(`{ auditEntries(first: 500) { edges { node { action targetId } } } }`, {}, owner);
  if (res.body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(res.body.errors)}`);
  return res.body.data.auditEntries.edges.map((edge: any) => edge.node).filter((entry: { targetId: string }) => entry.targetId === targetId);
}

/**
 * A mutation with one `$file: File!` variable, sent through the GraphQL multipart request spec (fields
 * operations, map, then the file) as a zip; returns the HTTP status and the raw answer.
 */
export async function postZip(url: string, token: string, query: string, bytes: Uint8Array, fileName: string): Promise<{ status: number; text: string }> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query, variables: { file: null } }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', new Blob([new Uint8Array(bytes)], { type: 'application/zip' }), fileName);
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: response.status, text: await response.text() };
}

/** POSTs `pieces` to `url` without a Content-Length (Transfer-Encoding: chunked); the answer's body is JSON. */
export function postChunked(url: string, headers: Record<string, string>, pieces: Iterable<string | Buffer>): Promise<{ status: number; contentType: string | null; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'] ?? null, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}
