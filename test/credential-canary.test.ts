// Credential canaries: an org is registered with a random refresh token and client secret, tasks redeem
// them in their child processes, and then everything Switchyard wrote or sent is searched for them (plain,
// base64 at every alignment, hex): the Postgres schema (pg_dump), every Redis key and value under the
// queue prefix and every pub/sub message on it, the API's and the worker's logs, every GraphQL response,
// task results, errors and events, the child's command line and environment while it holds the
// credentials, and the worker process's own. Done once with the built-in store and once with Vault, where
// the child must unwrap its grant itself and the worker must never receive the plaintext from Vault.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { VaultSecretStore } from '../src/secrets/vault-store.js';
import { startVaultServer, type VaultServer } from './fixtures/vault-server.js';
import { startTestApi, testDatabaseUrl, type TestApi } from './support/harness.js';
import { canary, encodings } from './support/leak-search.js';
import { FINAL_STATUSES, startTestWorker, waitFor, waitForTaskStatus, type TestWorker } from './support/worker-harness.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface Leak {
  where: string;
  form: string;
}

function findLeaks(where: string, haystack: string, secrets: string[]): Leak[] {
  const leaks: Leak[] = [];
  for (const secret of secrets) {
    for (const form of encodings(secret)) if (haystack.includes(form)) leaks.push({ where, form: form === secret ? 'plain' : form });
  }
  return leaks;
}

/** A node's raw UUID from its global id (base64 of "Type:uuid"). */
function rawId(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;
}

async function pgDump(schema: string): Promise<string> {
  const url = new URL(testDatabaseUrl);
  const { stdout } = await promisify(execFile)(
    'pg_dump',
    ['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username) || 'postgres', '-n', schema, url.pathname.slice(1)],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout;
}

/** Every key under the prefix with its whole value, read with the command its type needs. */
async function dumpRedis(redisUrl: string, prefix: string): Promise<{ text: string; keys: number }> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const out: string[] = [];
  let keys = 0;
  try {
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of batch) {
        keys += 1;
        const type = await redis.type(key);
        let value: unknown;
        if (type === 'string') value = await redis.get(key);
        else if (type === 'hash') value = await redis.hgetall(key);
        else if (type === 'list') value = await redis.lrange(key, 0, -1);
        else if (type === 'set') value = await redis.smembers(key);
        else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
        else if (type === 'stream') value = await redis.xrange(key, '-', '+');
        else if (type === 'none') continue; // expired between SCAN and TYPE
        else throw new Error(`Redis key ${key} has unexpected type ${type}`);
        out.push(`${key} ${type} ${JSON.stringify(value)}`);
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return { text: out.join('\n'), keys };
}

function procText(path: string): string {
  return readFileSync(path).toString('utf8').split('\0').join('\n');
}

function ppidOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** The process holding the client end of a local TCP connection (client port → server port), via /proc. */
function socketOwner(clientPort: number, serverPort: number): number | null {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = parseInt(cols[1]!.split(':')[1]!, 16);
      const remote = parseInt(cols[2]!.split(':')[1]!, 16);
      if (local === clientPort && remote === serverPort) inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return null;
  const pids = [String(process.pid), ...readdirSync('/proc').filter((entry) => /^\d+$/.test(entry) && entry !== String(process.pid))];
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match && inodes.has(match[1]!)) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

interface ProxiedConnection {
  /** The process that opened the connection, and its parent, when it was accepted. */
  pid: number | null;
  ppid: number | null;
  sent: Buffer[];
  received: Buffer[];
}

/** A TCP relay in front of the Vault fixture that records, per connection, who connected and every byte. */
async function startRecordingProxy(target: string): Promise<{ address: string; connections: ProxiedConnection[]; close(): Promise<void> }> {
  const upstreamUrl = new URL(target);
  const connections: ProxiedConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const pid = socketOwner(client.remotePort!, (server.address() as AddressInfo).port);
    const record: ProxiedConnection = { pid, ppid: pid === null ? null : ppidOf(pid), sent: [], received: [] };
    connections.push(record);
    const upstream = connect(Number(upstreamUrl.port), upstreamUrl.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk: Buffer) => record.sent.push(chunk));
    upstream.on('data', (chunk: Buffer) => record.received.push(chunk));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const allowedChildEnv = new Set(['PATH', 'LANG', 'TZ', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']);

interface Scenario {
  api: TestApi;
  worker: TestWorker;
  /** Secrets the child must not inherit (besides the canaries). */
  workerSecrets: string[];
}

interface Outcome {
  leaks: Leak[];
  refreshToken: string;
  clientSecret: string;
  /** Child processes seen holding credentials (pids), for the Vault checks. */
  childPids: number[];
}

/**
 * Registers the canary org, runs the tasks, inspects the running child, and searches everything. Returns
 * the leaks found (expected: none) so each backend can add its own places to search.
 */
async function runCanaryScenario({ api, worker, workerSecrets }: Scenario, extraPlaces: () => Array<[string, string]>): Promise<Outcome> {
  const refreshToken = canary('5Aep861CanaryRefresh');
  const clientSecret = canary('CanaryClientSecret');
  const secrets = [refreshToken, clientSecret];
  const fingerprint = createHash('sha256').update(refreshToken).digest('hex').slice(0, 12);

  // Every pub/sub message under the prefix (task events, control messages).
  const published: string[] = [];
  const subscriber = new Redis(api.redisUrl, { maxRetriesPerRequest: 1 });
  cleanups.push(async () => subscriber.disconnect());
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => void published.push(`${channel} ${message}`));
  await subscriber.psubscribe(`${api.queuePrefix}*`);

  const responses: string[] = [];
  const token = await api.token('OWNER');
  const gql = async (query: string, variables: Record<string, unknown> = {}) => {
    const res = await api.gql(query, variables, token);
    responses.push(JSON.stringify({ status: res.status, headers: [...res.headers], body: res.body }));
    return res;
  };

  const registered = await gql(
    `mutation($c: OrgCredentialsInput!) { registerOrg(input: { alias: "canary", kind: PRODUCTION, credentials: $c }) { __typename ... on RegisterOrgSuccess { org { id alias instanceUrl status } } ... on Error { code message } } }`,
    { c: { instanceUrl: 'https://canary.my.salesforce.com', refreshToken, clientId: `3MVG9${randomBytes(12).toString('hex')}`, clientSecret } },
  );
  expect(registered.body.data?.registerOrg.__typename, JSON.stringify(registered.body)).toBe('RegisterOrgSuccess');

  // Malformed registrations: error paths are where values get quoted (graphql-js variable coercion, scalar
  // errors, credential validation). Their responses and logs are searched with the rest.
  const instanceUrl = 'https://canary.my.salesforce.com';
  const withCredentials = `mutation($c: OrgCredentialsInput!) { registerOrg(input: { alias: "canary-bad", kind: SANDBOX, credentials: $c }) { __typename ... on Error { code message } } }`;
  const withInput = `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename ... on Error { code message } } }`;
  const malformed: Array<[string, Record<string, unknown>]> = [
    [withCredentials, { c: { instanceUrl, refreshToken, clientId: 'cid', clientSecret, bogus: 1 } }],
    // A "; " inside an earlier string of the quoted object.
    [withCredentials, { c: { instanceUrl: `${instanceUrl}; eu`, refreshToken, clientId: 'cid', clientSecret, bogus: 1 } }],
    [withCredentials, { c: { instanceUrl, refreshToken: [refreshToken] } }],
    [withCredentials, { c: { instanceUrl, refreshToken, clientId: 'cid', clientSecret: { value: clientSecret } } }],
    [withInput, { input: { alias: 'canary; bad', kind: 'SANDBOX', credentials: { instanceUrl, refreshToken, clientSecret, clientld: 'cid' } } }],
    [withCredentials, { c: { instanceUrl, refreshToken: `${refreshToken} x` } }],
    [withCredentials, { c: { instanceUrl: 'http://canary.example.com', refreshToken, clientId: 'cid', clientSecret } }],
    [withCredentials, { c: { sfdxAuthUrl: `force://cid:${clientSecret}:${refreshToken}@not a host/` } }],
  ];
  for (const [query, variables] of malformed) {
    const res = await gql(query, variables);
    const outcome = res.body.data?.registerOrg?.__typename ?? res.body.errors?.[0]?.message;
    expect(outcome, JSON.stringify(variables)).toBeDefined();
    expect(outcome).not.toBe('RegisterOrgSuccess');
  }
  // Cutting the quoted value keeps what is wrong and where.
  const listed = await gql(withCredentials, { c: { instanceUrl, refreshToken: [refreshToken] } });
  expect(listed.body.errors?.[0]?.message).toMatch(/at "c\.refreshToken"; String cannot represent a non string value$/);

  const submit = async (params: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const res = await gql(
      `mutation($input: SubmitTaskInput!) { submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id status params } } ... on Error { code message } } }`,
      { input: { type: 'DIAGNOSTIC', org: 'canary', params, ...extra } },
    );
    expect(res.body.data?.submitTask.__typename, JSON.stringify(res.body)).toBe('SubmitTaskSuccess');
    return rawId(res.body.data.submitTask.task.id);
  };
  const succeeds = await submit({ steps: 2, stepMs: 10, readCredentials: true });
  const fails = await submit(
    { steps: 1, stepMs: 10, readCredentials: true, failWith: { code: 'CANARY_FAILURE', message: 'diagnostic failure after reading credentials', retryable: false } },
    { maxAttempts: 1 },
  );
  const long = await submit({ steps: 3, stepMs: 1500, readCredentials: true });

  // While the long task's child holds the credentials: its command line and environment.
  const running = await waitFor(
    async () => {
      const task = await api.prisma.task.findUnique({ where: { id: long } });
      if (task?.status !== 'RUNNING' || !task.childPid) return null;
      const redeemed = await api.prisma.taskEvent.count({ where: { taskId: long, kind: 'LOG', payload: { path: ['message'], equals: 'credentials redeemed' } } });
      return redeemed > 0 ? task : null;
    },
    15_000,
    'the long task to hold its credentials',
  );
  const childPid = running.childPid!;
  const childCmdline = procText(`/proc/${childPid}/cmdline`);
  const childEnviron = procText(`/proc/${childPid}/environ`);
  expect(ppidOf(childPid)).toBe(process.pid); // a child of this (the worker's) process…
  expect(childCmdline).toMatch(/child-main\.js/); // …running the task entry point
  const childEnvKeys = childEnviron.split('\n').filter(Boolean).map((entry) => entry.slice(0, entry.indexOf('=')));
  expect(childEnvKeys.filter((key) => !allowedChildEnv.has(key) && !key.startsWith('NODE_CHANNEL_'))).toEqual([]);
  expect(await api.prisma.task.findUnique({ where: { id: long }, select: { status: true } })).toEqual({ status: 'RUNNING' });

  const readTask = async (id: string) => {
    const res = await gql(
      `query($id: ID!) { task(id: $id) { status attempts result error { code message } phase params events(first: 200) { edges { cursor node { seq kind payload createdAt } } } } }`,
      { id },
    );
    return res.body.data?.task;
  };
  const finished = (id: string) => waitForTaskStatus(readTask, id, FINAL_STATUSES, 20_000);
  const [ok, failed, longDone] = [await finished(succeeds), await finished(fails), await finished(long)];
  expect(ok.status).toBe('SUCCEEDED');
  expect(longDone.status).toBe('SUCCEEDED');
  // The fingerprint proves the child really read the canary.
  expect(ok.result.credentialFingerprint).toBe(fingerprint);
  expect(longDone.result.credentialFingerprint).toBe(fingerprint);
  expect(longDone.result.pid).toBe(childPid);
  expect(failed.status).toBe('FAILED');
  expect(failed.error.code).toBe('CANARY_FAILURE');
  expect(failed.events.edges.some((edge: any) => edge.node.kind === 'LOG' && edge.node.payload.message === 'credentials redeemed')).toBe(true);

  // Everything else a client can read about the org and its history.
  await gql(`{ orgs { edges { node { id alias instanceUrl status kind salesforceOrgId tasks { totalCount edges { node { id status result error { code message } } } } } } } }`);
  await gql(`{ tasks(first: 50) { edges { node { id status params result error { code message } phase events { edges { node { kind payload } } } } } } }`);
  const audit = await gql(`{ auditEntries(first: 50) { edges { node { action actor targetType targetId details } } } }`);
  expect(audit.body.data.auditEntries.edges.map((edge: any) => edge.node.action)).toContain('org.credentials.write');
  await gql(`{ viewer { userName role permissions } schedules { totalCount } }`);

  // Postgres, as pg_dump sees it. The dump must contain the task data, or the search would prove nothing.
  const dump = await pgDump(api.schema);
  expect(dump).toContain(fingerprint);
  expect(dump).toContain('CANARY_FAILURE');

  const redis = await dumpRedis(api.redisUrl, api.queuePrefix);
  expect(redis.keys).toBeGreaterThan(5);
  expect(redis.text).toContain(succeeds); // the jobs are there

  expect(published.some((message) => message.includes(fingerprint))).toBe(true);
  expect(api.logLines.length).toBeGreaterThan(0);

  const places: Array<[string, string]> = [
    ['pg_dump', dump],
    ['Redis keys and values', redis.text],
    ['Redis pub/sub messages', published.join('\n')],
    ['API log', api.logLines.join('')],
    ['worker log', worker.logLines.join('')],
    ['GraphQL responses', responses.join('\n')],
    ['task results, errors and events', JSON.stringify([ok, failed, longDone])],
    ['child command line', childCmdline],
    ['child environment', childEnviron],
    ['worker command line', `${procText('/proc/self/cmdline')}\n${process.argv.join(' ')}\n${process.execArgv.join(' ')}`],
    ['worker environment', `${procText('/proc/self/environ')}\n${JSON.stringify(process.env)}`],
    ...extraPlaces(),
  ];
  const leaks = places.flatMap(([where, text]) => findLeaks(where, text, secrets));
  // What the worker keeps from its children must not reach them either.
  leaks.push(...findLeaks('child environment (worker secrets)', `${childCmdline}\n${childEnviron}`, workerSecrets));
  return { leaks, refreshToken, clientSecret, childPids: [childPid, ok.result.pid] };
}

/** Secrets the worker process holds in its environment, which its children must not inherit. */
function plantWorkerSecrets(api: TestApi, secretKeyHex: string): string[] {
  process.env.SWITCHYARD_SECRET_KEY = secretKeyHex;
  process.env.DATABASE_URL = api.databaseUrl;
  process.env.REDIS_URL = `redis://:${randomBytes(8).toString('hex')}@127.0.0.1:6379`;
  cleanups.push(async () => {
    delete process.env.SWITCHYARD_SECRET_KEY;
    delete process.env.DATABASE_URL;
    delete process.env.REDIS_URL;
  });
  return [secretKeyHex, api.databaseUrl, process.env.REDIS_URL];
}

describe('credential canaries', () => {
  it('never leave the child process with the built-in store', async () => {
    const secretKey = randomBytes(32);
    const api = await startTestApi('canary_builtin', { secretKey });
    cleanups.push(() => api.close());
    const workerSecrets = plantWorkerSecrets(api, secretKey.toString('hex'));
    const worker = await startTestWorker(api);
    cleanups.push(() => worker.close());

    // The detector itself: a canary hidden in base64 or hex inside other data is found.
    const probe = canary('Probe');
    expect(findLeaks('probe', Buffer.from(JSON.stringify({ refreshToken: probe })).toString('base64'), [probe])).not.toEqual([]);
    expect(findLeaks('probe', `x${Buffer.from(`ab${probe}`).toString('base64url')}`, [probe])).not.toEqual([]);
    expect(findLeaks('probe', `\\x00${Buffer.from(probe).toString('hex')}`, [probe])).not.toEqual([]);

    const outcome = await runCanaryScenario({ api, worker, workerSecrets }, () => []);
    expect(outcome.leaks).toEqual([]);
    // The built-in store keeps the credentials encrypted in Postgres, under the org's secretRef.
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'canary' } });
    expect(await api.prisma.secret.count({ where: { name: org.secretRef } })).toBe(1);
  }, 45_000);

  it('never reach the worker with Vault: the child unwraps its grant itself', async () => {
    const vaultToken = `hvs.root-${randomBytes(16).toString('hex')}`;
    const vault: VaultServer = await startVaultServer({ token: vaultToken });
    cleanups.push(() => vault.close());
    const proxy = await startRecordingProxy(vault.address);
    cleanups.push(() => proxy.close());
    const api = await startTestApi('canary_vault', {
      secrets: () => new VaultSecretStore({ address: proxy.address, token: vaultToken, mount: 'secret', pathPrefix: 'switchyard' }),
    });
    cleanups.push(() => api.close());
    expect(api.services.secrets.kind).toBe('vault');
    const workerSecrets = [...plantWorkerSecrets(api, randomBytes(32).toString('hex')), vaultToken];
    const worker = await startTestWorker(api);
    cleanups.push(() => worker.close());

    const isUnwrap = (request: { path: string }) => request.path === '/v1/sys/wrapping/unwrap';
    const outcome = await runCanaryScenario({ api, worker, workerSecrets }, () => [
      // Vault's answers to everything but the children's unwraps: writes, wrapped reads, lookups.
      ['Vault responses other than unwrap', vault.requests.filter((request) => !isUnwrap(request)).map((request) => request.responseBody).join('\n')],
      // Every byte Vault sent to connections opened by this process (the API and the worker).
      [
        'Vault traffic received by the worker process',
        proxy.connections
          .filter((connection) => connection.pid === process.pid)
          .map((connection) => Buffer.concat(connection.received).toString('latin1'))
          .join('\n'),
      ],
    ]);
    expect(outcome.leaks).toEqual([]);

    // The secret lives in Vault only, and every grant was issued wrapped, then unwrapped once each by a child.
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'canary' } });
    expect(await api.prisma.secret.count()).toBe(0);
    expect(vault.kvData('secret', `switchyard/${org.secretRef}`)?.refreshToken).toBe(outcome.refreshToken);
    const wrappedReads = vault.requests.filter((request) => request.method === 'GET' && request.path.endsWith(org.secretRef));
    expect(wrappedReads.length).toBe(3);
    for (const read of wrappedReads) {
      expect(read.wrapTtl).toBeDefined();
      expect(read.responseBody).not.toContain('refreshToken');
    }
    const unwraps = vault.requests.filter(isUnwrap);
    expect(unwraps.map((request) => request.status)).toEqual([200, 200, 200]);
    for (const unwrap of unwraps) {
      expect(unwrap.hadToken).toBe(true);
      expect(unwrap.bodyHadToken).toBe(false);
      expect(unwrap.responseBody).toContain(outcome.refreshToken); // so the search above could have found it
    }
    expect(vault.pendingWraps).toBe(0);

    // Who talked to Vault: the unwraps came from child processes of this worker, never from the worker.
    const unwrapConnections = proxy.connections.filter((connection) => Buffer.concat(connection.sent).toString('latin1').includes('/v1/sys/wrapping/unwrap'));
    expect(unwrapConnections.length).toBe(3);
    for (const connection of unwrapConnections) {
      expect(connection.pid).not.toBeNull();
      expect(connection.pid).not.toBe(process.pid);
      expect(connection.ppid).toBe(process.pid);
      expect(Buffer.concat(connection.received).toString('latin1')).toContain(outcome.refreshToken);
    }
    expect(outcome.childPids.every((pid) => unwrapConnections.some((connection) => connection.pid === pid))).toBe(true);
    const own = proxy.connections.filter((connection) => connection.pid === process.pid);
    expect(own.length).toBeGreaterThan(0);
    expect(own.some((connection) => Buffer.concat(connection.sent).toString('latin1').toLowerCase().includes('x-vault-wrap-ttl'))).toBe(true);
    expect(proxy.connections.every((connection) => connection.pid === process.pid || connection.ppid === process.pid)).toBe(true);

    // A run whose operation never asks for credentials gets no grant: Vault is not asked to wrap anything, so no
    // wrapping token is left live behind it.
    const token = await api.token('OWNER');
    const wrapsBefore = vault.requests.filter((request) => request.wrapTtl !== undefined).length;
    const quiet = await api.gql(`mutation { submitTask(input: { type: DIAGNOSTIC, org: "canary", params: { steps: 1, stepMs: 0 } }) { ... on SubmitTaskSuccess { task { id } } } }`, {}, token);
    const quietId = rawId(quiet.body.data.submitTask.task.id as string);
    expect(await waitForTaskStatus((id) => api.prisma.task.findUnique({ where: { id } }), quietId)).toMatchObject({ status: 'SUCCEEDED' });
    expect(vault.requests.filter((request) => request.wrapTtl !== undefined).length).toBe(wrapsBefore);
    expect(vault.pendingWraps).toBe(0);

    // Credentials gone from Vault (deleted out of band): Vault answers 404 to the grant, and no retry would find
    // them, so the task fails at once instead of spending its attempts.
    await api.services.secrets.delete(org.secretRef);
    const submitted = await api.gql(`mutation { submitTask(input: { type: DIAGNOSTIC, org: "canary", maxAttempts: 3, retryBackoffMs: 0, params: { steps: 1, stepMs: 0, readCredentials: true } }) { ... on SubmitTaskSuccess { task { id } } } }`, {}, token);
    const taskId = rawId(submitted.body.data.submitTask.task.id as string);
    const ended = await waitForTaskStatus((id) => api.prisma.task.findUnique({ where: { id } }), taskId);
    expect(ended).toMatchObject({ status: 'FAILED', attempts: 1, errorCode: 'CREDENTIALS_UNAVAILABLE', errorMessage: "The org's credentials are not in the secret store: rotate them (rotateOrgCredentials)" });
  }, 45_000);
});
