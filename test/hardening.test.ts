// GraphQL hardening and rate limits as a client sees them (the Caddy edge test covers them through Caddy).
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { postChunked, postZip, startTestApi, type TestApi } from './support/harness.js';
import { samplePackage } from './support/salesforce-package.js';
import { waitFor } from './support/worker-harness.js';
import { collect, rawClient, wsClient } from './support/ws-client.js';

let api: TestApi;
let token: string;
/** An API with small body limits, and no rate limit. */
let bodies: TestApi;
let bodiesToken: string;
const maxRequestBytes = 4096;
const maxUploadBytes = 8192;
/** An API with the default operation limits (5000 tokens, nesting 100), where a deep document fits the token limit. */
let nesting: TestApi;
let nestingToken: string;

beforeAll(async () => {
  api = await startTestApi('hardening', {
    app: {
      rateLimits: { api: 5, webhooks: 3 },
      operationLimits: { maxDepth: 6, maxAliases: 3, maxFields: 40, maxTokens: 400, introspection: false },
    },
  });
  token = await api.token('OWNER');
  bodies = await startTestApi('hardening-bodies', { app: { bodyLimits: { maxRequestBytes, maxUploadBytes } }, subscriptionLimits: { revalidateMs: 300 } });
  bodiesToken = await bodies.token('OWNER');
  nesting = await startTestApi('hardening-nesting');
  nestingToken = await nesting.token('OWNER');
});

afterAll(async () => {
  await Promise.all([api?.close(), bodies?.close(), nesting?.close()]);
});

const codes = (res: { body: { errors?: Array<{ extensions?: Record<string, unknown> }> } }) => res.body.errors?.map((e) => e.extensions?.code);

describe('operation limits', () => {
  it('refuses a query nested too deep, with too many aliases, too many fields or tokens, and introspection', async () => {
    const deep = await api.gql('{ tasks { edges { node { org { tasks { edges { node { id } } } } } } } }', {}, token);
    expect(codes(deep)).toContain('QUERY_TOO_DEEP');
    const aliases = await api.gql('{ a: viewer { role } b: viewer { role } c: viewer { role } d: viewer { role } }', {}, token);
    expect(codes(aliases)).toContain('TOO_MANY_ALIASES');
    const fields = await api.gql(`{ viewer { ${Array.from({ length: 45 }, () => 'role').join(' ')} } }`, {}, token);
    expect(codes(fields)).toContain('QUERY_TOO_COSTLY');
    const tokens = await api.gql(`{ viewer { ${'userName '.repeat(500)} } }`, {}, token);
    // Yoga reports every parse failure as GRAPHQL_PARSE_FAILED; the message names the limit.
    expect(codes(tokens)).toContain('GRAPHQL_PARSE_FAILED');
    expect(tokens.body.errors![0]!.message).toMatch(/400 tokens/);
    const introspection = await api.gql('{ __schema { queryType { name } } }', {}, token);
    expect(codes(introspection)).toContain('INTROSPECTION_DISABLED');
  });
});

describe('connection objects per operation (SWITCHYARD_GRAPHQL_MAX_NODES)', () => {
  it('refuses an operation whose nested connections may return more objects than the limit, counting page sizes multiplied', { timeout: 20_000 }, async () => {
    // Page sizes multiply down nested connections (orgs → tasks → events at 100 a page is a million events), which
    // neither the depth nor the field count sees: a few fields could ask for millions of rows.
    const limited = await startTestApi('max_nodes', { app: { operationLimits: { maxNodes: 1000 } } });
    try {
      const viewer = await limited.token('VIEWER');
      const tasks = (tasksArgs: string, eventsArgs: string) => `tasks${tasksArgs} { edges { node { id events${eventsArgs} { edges { node { seq } } } } } }`;
      const answer = async (query: string, variables: Record<string, unknown> = {}) => {
        const res = await limited.gql(query, variables, viewer);
        return codes(res)?.[0] ?? 'OK';
      };
      expect(await answer(`{ ${tasks('(first: 5)', '(first: 100)')} }`)).toBe('OK'); // 5 + 5 × 100
      expect(await answer(`{ ${tasks('(first: 20)', '(first: 100)')} }`)).toBe('QUERY_TOO_COSTLY'); // 20 + 2,000
      expect(await answer(`{ ${tasks('', '(first: 40)')} }`)).toBe('OK'); // the default page, 20: 20 + 800
      expect(await answer(`{ ${tasks('', '')} }`)).toBe('OK'); // 20 + 400
      // A page size from a variable is not known when the document is checked: it counts as the largest page.
      expect(await answer(`query($n: Int) { ${tasks('(first: $n)', '(first: 10)')} }`, { n: 2 })).toBe('QUERY_TOO_COSTLY'); // 100 + 1,000
      // Aliases and fragments count where they are used.
      expect(await answer(`{ a: ${tasks('(first: 5)', '(first: 100)')} b: ${tasks('(first: 5)', '(first: 100)')} }`)).toBe('QUERY_TOO_COSTLY'); // 2 × 505
      expect(await answer(`{ ...q } fragment q on Query { ${tasks('(first: 20)', '(first: 100)')} }`)).toBe('QUERY_TOO_COSTLY');
      expect(await answer(`{ orgs(first: 10) { edges { node { ... on Org { ${tasks('(first: 10)', '(first: 10)')} } } } } }`)).toBe('QUERY_TOO_COSTLY'); // 10 + 100 + 1,000
      // nodes(ids:) is a list of parents too: as many as its ids, or the most it takes (100) from a variable.
      const orgTasks = `... on Org { ${tasks('(first: 10)', '(first: 10)')} }`;
      const id = encodeGlobalID('Org', randomUUID());
      expect(await answer(`{ nodes(ids: ["${id}"]) { ${orgTasks} } }`)).toBe('OK'); // 1 + 10 + 100
      expect(await answer(`{ nodes(ids: [${Array(10).fill(`"${id}"`).join(', ')}]) { ${orgTasks} } }`)).toBe('QUERY_TOO_COSTLY'); // 10 + 100 + 1,000
      expect(await answer(`query($ids: [ID!]!) { nodes(ids: $ids) { ${orgTasks} } }`, { ids: [id] })).toBe('QUERY_TOO_COSTLY'); // 100 + 1,000 + 10,000
      const refused = await limited.gql(`{ ${tasks('(first: 20)', '(first: 100)')} }`, {}, viewer);
      expect(refused.body.errors![0]!.message).toMatch(/may return 2020 objects .*the limit is 1000/);
    } finally {
      await limited.close();
    }
  });
});

describe('nesting limit (SWITCHYARD_GRAPHQL_MAX_NESTING, default 100)', () => {
  const submit = (params: string) => `mutation { submitTask(input: {type: DIAGNOSTIC, org: "uat", params: ${params}}) { __typename ... on Error { code } } }`;
  /** POSTs a body written by hand: a client's JSON.stringify overflows on the nesting these tests send. */
  async function postRaw(body: string, withToken = true) {
    const response = await fetch(`${nesting.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(withToken ? { authorization: `Bearer ${nestingToken}` } : {}) },
      body,
    });
    return { status: response.status, body: (await response.json()) as { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } };
  }

  // Under the 5000-token limit, each of these overflowed graphql-js's recursive parser: HTTP 500 "Unexpected error."
  it.each([
    ['a list value 2000 levels deep', submit(`${'['.repeat(2000)}${']'.repeat(2000)}`)],
    ['an object value 1500 levels deep', submit(`${'{a:'.repeat(1500)}1${'}'.repeat(1500)}`)],
    ['a selection set 2000 levels deep', `{ ${'a { '.repeat(2000)}b${' }'.repeat(2000)} }`],
  ])('refuses %s before parsing it, with HTTP 400 and GRAPHQL_PARSE_FAILED, with or without a token', async (_label, query) => {
    for (const token of [nestingToken, null]) {
      const res = await nesting.gql(query, {}, token);
      expect(res.status).toBe(400);
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0]!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(res.body.errors![0]!.message).toMatch(/^The document nests brackets \d+ levels deep; the limit is 100$/);
    }
  });

  it('parses a document within the limit, and does not count brackets in strings, block strings and comments', async () => {
    const within = await nesting.gql(submit(`{steps: 1, x: ${'['.repeat(90)}${']'.repeat(90)}}`), {}, nestingToken);
    expect(within.status).toBe(200);
    expect(within.body.data.submitTask).toEqual({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    const quoted = await nesting.gql(
      `query { a: org(alias: "${'[{('.repeat(200)}\\"") { alias } b: org(alias: """${'{'.repeat(200)}\\""" ]""") { alias } } # ${'{'.repeat(200)}`,
      {},
      nestingToken,
    );
    expect(quoted.status).toBe(200);
    expect(quoted.body).toEqual({ data: { a: null, b: null } });
  });

  it('refuses variables nested deeper than the limit over HTTP, with or without a token', async () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    for (const withToken of [true, false]) {
      const res = await postRaw(`{"query":"mutation($p: JSON) { submitTask(input: {type: DIAGNOSTIC, org: \\"uat\\", params: $p}) { __typename } }","variables":{"p":{"x":${deep}}}}`, withToken);
      expect(res.status).toBe(400);
      expect(res.body.errors?.map((e) => e.extensions?.code)).toEqual(['GRAPHQL_PARSE_FAILED']);
      expect(res.body.errors![0]!.message).toBe('The variables nest 20002 levels deep; the limit is 100');
    }
    // Within the limit the operation runs (the params are then refused by their own validation).
    const within = await postRaw(`{"query":"mutation($p: JSON) { submitTask(input: {type: DIAGNOSTIC, org: \\"uat\\", params: $p}) { __typename } }","variables":{"p":{"x":${'['.repeat(90)}${']'.repeat(90)}}}}`);
    expect(within.body).toEqual({ data: { submitTask: { __typename: 'ValidationError' } } });
  });

  it('refuses variables nested deeper than the limit over WebSocket, keeping the connection open', async () => {
    // Their sharing key was computed recursively: the socket was closed with 4500 (internal error).
    const { ws, messages, closed } = await rawClient(nesting, nestingToken);
    const query = JSON.stringify('subscription($a: String) { taskEvents(taskId: "x", after: $a) { seq } }');
    ws.send(`{"id":"deep","type":"subscribe","payload":{"query":${query},"variables":{"a":${'['.repeat(20_000)}${']'.repeat(20_000)}}}}`);
    const refused = await waitFor(async () => messages.find((m) => m.id === 'deep'), 5000, 'an answer');
    expect(refused.type).toBe('error');
    expect(refused.payload.map((e: { extensions?: { code?: string } }) => e.extensions?.code)).toEqual(['GRAPHQL_PARSE_FAILED']);
    ws.send(JSON.stringify({ id: 'next', type: 'subscribe', payload: { query: '{ viewer { role } }' } }));
    const answered = await waitFor(async () => messages.find((m) => m.id === 'next' && m.type === 'next'), 5000, 'the next answer');
    expect(answered.payload).toEqual({ data: { viewer: { role: 'OWNER' } } });
    ws.close();
    expect((await closed).code).toBe(1005);
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After once a token used up its window, without affecting another token', async () => {
    const other = await api.token('VIEWER');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) statuses.push((await api.gql('{ viewer { role } }', {}, token)).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    const limited = await fetch(`${api.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await limited.json()) as any).errors[0].extensions.code).toBe('RATE_LIMITED');
    expect((await api.gql('{ viewer { role } }', {}, other)).status).toBe(200);
    // The window lives in Redis under a hash of the token, never the token itself.
    const keys = await api.redis.keys(`${api.queuePrefix}:ratelimit:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.join(' ')).not.toContain(token);
  });

  it('counts operations over a WebSocket against the token\'s limit, together with its HTTP requests', async () => {
    const limited = await api.token('VIEWER');
    const client = wsClient(api.url, limited);
    try {
      const answers: Array<string | undefined> = [];
      for (let i = 0; i < 4; i += 1) {
        const result = collect(client, '{ viewer { role } }');
        await result.done;
        answers.push((result.errors.flat()[0] as any)?.extensions?.code ?? result.events[0]?.viewer?.role);
      }
      expect((await api.gql('{ viewer { role } }', {}, limited)).status).toBe(200); // the fifth of five
      const over = collect(client, '{ viewer { role } }');
      await over.done;
      answers.push((over.errors.flat()[0] as any)?.extensions?.code); // graphql-ws sends an `error` message: a list of errors
      expect(answers).toEqual(['VIEWER', 'VIEWER', 'VIEWER', 'VIEWER', 'RATE_LIMITED']);
      expect((await api.gql('{ viewer { role } }', {}, limited)).status).toBe(429);
    } finally {
      await client.dispose();
    }
  });

  it('limits an IPv6 client by its /64, not by each of the addresses it may choose from', { timeout: 20_000 }, async () => {
    // Behind the edge (a trusted proxy), the client's address is the first X-Forwarded-For entry.
    const limited = await startTestApi('ratelimit_ipv6', { app: { rateLimits: { api: 2, webhooks: 0 }, trustedProxies: ['127.0.0.1', '::1'] } });
    try {
      const from = async (address: string) =>
        (await fetch(`${limited.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': address }, body: '{"query":"{ __typename }"}' })).status;
      const statuses = [];
      for (const address of ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', '2001:0db8:0001:0002:0:0:0:abcd']) statuses.push(await from(address));
      expect(statuses).toEqual([200, 200, 429]); // one /64, one budget
      expect(await from('2001:db8:1:3::1')).toBe(200); // the next /64 is another client
      expect(await from('203.0.113.7')).toBe(200); // IPv4 addresses one by one, as before
      expect(await from('203.0.113.8')).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('counts a request whose bearer token does not authenticate against the client address, not against a budget of its own', { timeout: 20_000 }, async () => {
    // A made-up token per request used to open a fresh budget each time, so a client without a token went
    // unlimited by inventing them.
    const limited = await startTestApi('ratelimit_bad_tokens', { app: { rateLimits: { api: 3, webhooks: 0 } } });
    try {
      const answered: unknown[] = [];
      for (let i = 0; i < 5; i += 1) answered.push(codes(await limited.gql('{ viewer { role } }', {}, madeUp()))?.[0]);
      expect(answered).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED', 'RATE_LIMITED']);
      // The address's budget is used up, and so is a request without a token from it...
      expect((await limited.gql('{ __typename }', {}, null)).status).toBe(429);
      // ...but a real token has its own.
      expect((await limited.gql('{ viewer { role } }', {}, await limited.token('VIEWER'))).body.data).toEqual({ viewer: { role: 'VIEWER' } });
    } finally {
      await limited.close();
    }
  });

  it('looks made-up tokens up at most four times the API limit a minute per address: past that, a request or a WebSocket connect costs no query', { timeout: 20_000 }, async () => {
    // The look-up that chooses a request's budget came before the limit, so a client far over it still cost the
    // database a query per request (or WebSocket connect) with a made-up token.
    const limited = await startTestApi('ratelimit_lookups', { app: { rateLimits: { api: 3, webhooks: 0 } } });
    try {
      const known = await limited.token('VIEWER');
      const fresh = await limited.token('MEMBER');
      let lookups = 0;
      const tokens = limited.services.tokens;
      const lookUp = tokens.authenticateWithExpiry.bind(tokens);
      tokens.authenticateWithExpiry = async (secret) => {
        lookups += 1;
        return lookUp(secret);
      };
      const connect = async (token: string) => {
        const ws = new WebSocket(`${limited.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
        const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
        await once(ws, 'open');
        ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
        return closed;
      };
      // A real token used just before: looked up to choose its budget (1 of 12), then by its request's context.
      expect((await limited.gql('{ viewer { role } }', {}, known)).status).toBe(200);
      expect(lookups).toBe(2);
      // WebSocket connects with made-up tokens use up the rest of the look-ups, not the address's requests.
      const codes: number[] = [];
      for (let i = 0; i < 13; i += 1) codes.push(await connect(madeUp()));
      expect(codes).toEqual([...Array(11).fill(4403), 4429, 4429]);
      expect(lookups).toBe(13);
      // An upload (authenticated before its body) with a token not looked up lately waits, and says so: not that
      // its token is invalid.
      const upload = await postZip(limited.url, fresh, UPLOAD, Buffer.from('PK'), 'tiny.zip');
      expect(upload.status).toBe(429);
      expect(JSON.parse(upload.text).errors[0].extensions.code).toBe('RATE_LIMITED');
      // Any other request of such a token is charged to the address, and its context authenticates it.
      expect((await limited.gql('{ viewer { role } }', {}, fresh)).body.data).toEqual({ viewer: { role: 'MEMBER' } });
      expect(lookups).toBe(14);
      // Made-up tokens over HTTP now cost no look-up to choose a budget: two more requests of the address are
      // let through (their context authenticates them), the rest refused.
      const statuses: number[] = [];
      for (let i = 0; i < 10; i += 1) statuses.push((await limited.gql('{ viewer { role } }', {}, madeUp())).status);
      expect(statuses).toEqual([401, 401, ...Array(8).fill(429)]);
      expect(lookups).toBe(16);
      // The token the replica looked up lately keeps its own budget.
      expect((await limited.gql('{ viewer { role } }', {}, known)).body.data).toEqual({ viewer: { role: 'VIEWER' } });
      expect(lookups).toBe(17);
    } finally {
      await limited.close();
    }
  });

  it('still authenticates a request after its body: a token revoked while the body arrives does not run it', { timeout: 20_000 }, async () => {
    // The rate limit looks the token up before the body, to know which budget the request counts against; that
    // answer must not stand in for the request's own authentication (an upload can stream for minutes).
    const limited = await startTestApi('ratelimit_revoked_midbody', { app: { rateLimits: { api: 100, webhooks: 0 } } });
    try {
      const owner = await limited.token('OWNER');
      const name = `midbody-${randomUUID()}`;
      const doomed = await limited.token('VIEWER', { name });
      const row = await limited.prisma.apiToken.findFirstOrThrow({ where: { name } });
      const body = JSON.stringify({ query: '{ viewer { role } }' });
      const socket = connect(Number(new URL(limited.url).port), '127.0.0.1');
      await once(socket, 'connect');
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
      const ended = once(socket, 'end');
      socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer ${doomed}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the rate limit has looked the token up by now
      const revoked = await limited.gql(`mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }`, { id: row.id }, owner);
      expect(revoked.body.data.revokeApiToken.__typename).toBe('RevokeApiTokenSuccess');
      socket.write(body.slice(10));
      await ended; // Connection: close: the server ends the connection after its answer
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
      expect(answer).toContain('"code":"UNAUTHENTICATED"');
      expect(answer).not.toContain('"role"');
    } finally {
      await limited.close();
    }
  });

  it('counts webhook requests per client address, whichever source id the path names', async () => {
    // The source id is the sender's to choose: a new one per request must not give a new budget.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const res = await fetch(`${api.url}/webhooks/ci/${randomUUID()}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
  });
});

/** POSTs to /graphql without a Content-Length (Transfer-Encoding: chunked), in the given pieces. */
const postGraphqlChunked = (url: string, contentType: string, pieces: Array<string | Buffer>) =>
  postChunked(`${url}/graphql`, { 'content-type': contentType, authorization: `Bearer ${bodiesToken}` }, pieces);

/** A bearer value of a token's form that no token has. */
const madeUp = () => `syt_${randomBytes(32).toString('base64url').slice(0, 43)}`;

const UPLOAD = `mutation($file: File!) { uploadArtifact(file: $file) { __typename ... on UploadArtifactSuccess { artifact { id sizeBytes } } } }`;
const REGISTER = `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename } }`;

describe('body limits (without the Caddy edge)', () => {
  const orgCount = () => bodies.prisma.org.count();
  const artifactCount = () => bodies.prisma.artifact.count();

  it('gives a request 15 minutes to arrive, body included, as the edge does (a large upload over a slow link)', () => {
    expect(bodies.app.server.requestTimeout).toBe(15 * 60_000); // Node's default would cut it at 5
    expect(bodies.app.server.headersTimeout).toBeLessThanOrEqual(60_000); // the headers still come quickly
  });

  it('refuses a JSON body whose Content-Length is over the limit with 413, running nothing', async () => {
    const before = await orgCount();
    const padding = 'x'.repeat(maxRequestBytes);
    const res = await bodies.gql(REGISTER, { input: { alias: 'too-big', kind: 'SANDBOX', credentials: { instanceUrl: 'https://big.my.salesforce.com', refreshToken: padding } } }, bodiesToken);
    expect(res.status).toBe(413);
    expect(codes(res)).toEqual(['PAYLOAD_TOO_LARGE']);
    expect(res.body.errors![0]!.message).toBe(`Request bodies are limited to ${maxRequestBytes} bytes`);
    expect(await orgCount()).toBe(before);
  });

  it('reads a chunked JSON body up to the limit: within it runs, over it is refused with 413, empty is a 400', async () => {
    const query = JSON.stringify({ query: '{ viewer { role } }' });
    const within = await postGraphqlChunked(bodies.url, 'application/json', [query.slice(0, 5), query.slice(5)]);
    expect({ status: within.status, body: within.body }).toEqual({ status: 200, body: { data: { viewer: { role: 'OWNER' } } } });

    const before = await orgCount();
    const big = JSON.stringify({ query: REGISTER, variables: { input: { alias: 'chunked', kind: 'SANDBOX', credentials: { instanceUrl: 'https://c.my.salesforce.com', refreshToken: 'y'.repeat(maxRequestBytes) } } } });
    const over = await postGraphqlChunked(bodies.url, 'application/json', [big.slice(0, 1000), big.slice(1000)]);
    expect(over.status).toBe(413);
    expect(over.body.errors.map((e: any) => e.extensions.code)).toEqual(['PAYLOAD_TOO_LARGE']);
    expect(await orgCount()).toBe(before);

    const empty = await postGraphqlChunked(bodies.url, 'application/json', []);
    expect(empty.status).toBe(400);
    expect(empty.body.errors.map((e: any) => e.extensions.code)).toEqual(['BAD_REQUEST']);
  });

  it('refuses an uploaded file over SWITCHYARD_MAX_UPLOAD_BYTES with 413 while it streams, storing nothing; one within it is stored', async () => {
    const before = await artifactCount();
    // Declared small enough to be read, so the form-data parser's own limit refuses it.
    const over = await postZip(bodies.url, bodiesToken, UPLOAD, Buffer.alloc(maxUploadBytes + 1, 7), 'big.zip');
    expect(over.status).toBe(413);
    expect(JSON.parse(over.text).errors.map((e: any) => [e.extensions.code, e.message])).toEqual([['PAYLOAD_TOO_LARGE', `Uploaded files are limited to ${maxUploadBytes} bytes`]]);

    // Chunked, and far larger: refused as well.
    const boundary = 'switchyard-test-boundary';
    const part = (headers: string, content: string | Buffer) => [Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')];
    const huge = await postGraphqlChunked(bodies.url, `multipart/form-data; boundary=${boundary}`, [
      ...part('Content-Disposition: form-data; name="operations"', JSON.stringify({ query: UPLOAD, variables: { file: null } })),
      ...part('Content-Disposition: form-data; name="map"', JSON.stringify({ 0: ['variables.file'] })),
      ...part('Content-Disposition: form-data; name="0"; filename="huge.zip"\r\nContent-Type: application/zip', Buffer.alloc(64 * maxUploadBytes, 7)),
      Buffer.from(`--${boundary}--\r\n`),
    ]);
    expect(huge.status).toBe(413);
    expect(huge.body.errors.map((e: any) => e.extensions.code)).toEqual(['PAYLOAD_TOO_LARGE']);
    expect(await artifactCount()).toBe(before);

    const zip = samplePackage(['Small']);
    expect(zip.length).toBeLessThanOrEqual(maxUploadBytes);
    const within = await postZip(bodies.url, bodiesToken, UPLOAD, zip, 'small.zip');
    expect(JSON.parse(within.text).data.uploadArtifact).toMatchObject({ __typename: 'UploadArtifactSuccess', artifact: { sizeBytes: zip.length } });
    expect(await artifactCount()).toBe(before + 1);
  });

  it('stores an upload larger than graphql-yoga\'s own default cap (25 MB) when the limit allows it, sent with or without a length', async () => {
    const large = await startTestApi('hardening-large', { shareWith: bodies, app: { bodyLimits: { maxRequestBytes: 64 * 1024, maxUploadBytes: 40 * 1024 * 1024 } } });
    try {
      const zip = Buffer.concat([samplePackage(['Large']), Buffer.alloc(26 * 1024 * 1024, 1)]); // a zip with trailing bytes: its signature is what is checked
      const stored = await postZip(large.url, bodiesToken, UPLOAD, zip, 'large.zip');
      expect(stored.status, stored.text.slice(0, 300)).toBe(200);
      expect(JSON.parse(stored.text).data.uploadArtifact).toMatchObject({ __typename: 'UploadArtifactSuccess', artifact: { sizeBytes: zip.length } });

      const boundary = 'switchyard-large-boundary';
      const part = (headers: string, content: string | Buffer) => [Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')];
      const chunked = await postChunked(`${large.url}/graphql`, { 'content-type': `multipart/form-data; boundary=${boundary}`, authorization: `Bearer ${bodiesToken}` }, [
        ...part('Content-Disposition: form-data; name="operations"', JSON.stringify({ query: UPLOAD, variables: { file: null } })),
        ...part('Content-Disposition: form-data; name="map"', JSON.stringify({ 0: ['variables.file'] })),
        ...part('Content-Disposition: form-data; name="0"; filename="large.zip"\r\nContent-Type: application/zip', Buffer.concat([zip, Buffer.alloc(1024, 2)])),
        Buffer.from(`--${boundary}--\r\n`),
      ]);
      expect(chunked.status, JSON.stringify(chunked.body).slice(0, 300)).toBe(200);
      expect(chunked.body.data.uploadArtifact).toMatchObject({ __typename: 'UploadArtifactSuccess', artifact: { sizeBytes: zip.length + 1024 } });
    } finally {
      await large.close();
    }
  });

  it('refuses an upload from a caller who could not run it before reading its body: 401 without a valid token, 403 for a role that may not upload', async () => {
    // Yoga reads a multipart body whole, keeping the file in memory, before the operation is authorised: anyone
    // could make a replica hold up to the upload limit per request (100 MiB by default) for as long as it sends.
    const viewer = await bodies.token('VIEWER');
    const port = Number(new URL(bodies.url).port);
    const callers: Array<[string, number, string]> = [['', 401, 'UNAUTHENTICATED'], [`Authorization: Bearer sy_${'0'.repeat(40)}\r\n`, 401, 'UNAUTHENTICATED'], [`Authorization: Bearer ${viewer}\r\n`, 403, 'FORBIDDEN']];
    for (const [authorization, status, code] of callers) {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
      // A body within the limits, of which only the start ever comes: the answer must not wait for the rest.
      socket.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n${authorization}Content-Length: ${maxUploadBytes}\r\n\r\n--b\r\n`);
      try {
        await waitFor(async () => answer.endsWith('\r\n0\r\n\r\n'), 5000, `the whole answer (${code})`); // its last chunk
      } finally {
        socket.destroy();
      }
      expect(answer).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(answer).toContain(`"code":"${code}"`);
    }
  });

  it('refuses a multipart field other than the file over the limit with 413', async () => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: `${UPLOAD} ${'#'.repeat(maxRequestBytes)}`, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'] }));
    form.append('0', new Blob([new Uint8Array(samplePackage(['Field']))]), 'field.zip');
    const res = await fetch(`${bodies.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${bodiesToken}` }, body: form });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).errors.map((e: any) => [e.extensions.code, e.message])).toEqual([
      ['PAYLOAD_TOO_LARGE', `Multipart fields other than the file are limited to ${maxRequestBytes} bytes`],
    ]);
  });

  it('refuses a request carrying more than one file with 413', async () => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: UPLOAD, variables: { file: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.file'], 1: ['variables.other'] }));
    form.append('0', new Blob([new Uint8Array(samplePackage(['One']))]), 'one.zip');
    form.append('1', new Blob([new Uint8Array(samplePackage(['Two']))]), 'two.zip');
    const res = await fetch(`${bodies.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${bodiesToken}` }, body: form });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).errors.map((e: any) => [e.extensions.code, e.message])).toEqual([['PAYLOAD_TOO_LARGE', 'One file can be uploaded per request']]);
  });
});

describe('strings Postgres cannot store', () => {
  const SUBMIT = `mutation($input: SubmitTaskInput!) { submitTask(input: $input) { __typename } }`;

  it('refuses NUL and unpaired surrogates in variables and in literals with VALIDATION_FAILED naming where, storing nothing', async () => {
    const before = { orgs: await bodies.prisma.org.count(), secrets: await bodies.prisma.secret.count(), tasks: await bodies.prisma.task.count() };
    const nul = await bodies.gql(REGISTER, { input: { alias: 'u\u0000at', kind: 'SANDBOX', credentials: { instanceUrl: 'https://nul.my.salesforce.com', refreshToken: 'rt' } } }, bodiesToken);
    expect(nul.status).toBe(200);
    expect(nul.body.errors!.map((e) => e.extensions)).toEqual([
      { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['$input', 'alias'], message: 'must not contain NUL (U+0000) or an unpaired surrogate' }] },
    ]);
    const surrogate = await bodies.gql(SUBMIT, { input: { type: 'DIAGNOSTIC', org: 'any', params: { failWith: { code: 'X', message: 'half \ud800 a pair' } } } }, bodiesToken);
    expect(surrogate.body.errors!.map((e) => e.extensions)).toEqual([
      { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['$input', 'params', 'failWith', 'message'], message: 'must not contain NUL (U+0000) or an unpaired surrogate' }] },
    ]);
    const literal = await bodies.gql(`mutation { submitTask(input: { type: DIAGNOSTIC, org: "u\\u0000at" }) { __typename } }`, {}, bodiesToken);
    expect(literal.body.errors!.map((e) => e.extensions)).toEqual([
      { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['input', 'org'], message: 'must not contain NUL (U+0000) or an unpaired surrogate' }] },
    ]);
    const query = await bodies.gql(`query($alias: String!) { org(alias: $alias) { id } }`, { alias: 'x\u0000' }, bodiesToken);
    expect(codes(query)).toEqual(['VALIDATION_FAILED']);
    expect({ orgs: await bodies.prisma.org.count(), secrets: await bodies.prisma.secret.count(), tasks: await bodies.prisma.task.count() }).toEqual(before);
    // Without a valid token the answer is 401 and nothing more, whatever the strings hold.
    const anonymous = await bodies.gql(REGISTER, { input: { alias: 'u\u0000at', kind: 'SANDBOX', credentials: { instanceUrl: 'https://nul.my.salesforce.com', refreshToken: 'rt' } } });
    expect(anonymous.status).toBe(401);
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
    // A character outside the Basic Multilingual Plane is a pair of surrogates, and fine.
    const emoji = await bodies.gql(`query($alias: String!) { org(alias: $alias) { id } }`, { alias: 'rocket-\u{1F680}' }, bodiesToken);
    expect(emoji.body.errors).toBeUndefined();
  });
});

describe('logs', () => {
  it("does not log a client's mistake (a malformed id) as a server error", async () => {
    const before = bodies.logLines.length;
    const res = await bodies.gql(`{ task(id: "nope") { id } }`, {}, bodiesToken);
    expect(codes(res)).toEqual(['VALIDATION_FAILED']);
    expect(res.body.errors![0]!.message).toMatch(/^Invalid input at id: /);
    const errors = bodies.logLines.slice(before).map((line) => JSON.parse(line)).filter((line) => line.level >= 50);
    expect(errors).toEqual([]);
  });
});

describe('WebSocket messages', () => {
  it('closes a socket that sends a message over SWITCHYARD_MAX_REQUEST_BYTES with 1009, as HTTP refuses such a body', async () => {
    const client = await rawClient(bodies, bodiesToken);
    const query = `subscription { taskChanges { id } } # ${'x'.repeat(maxRequestBytes)}`;
    client.ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
    expect((await client.closed).code).toBe(1009);
  });
});

describe('subscriptions over server-sent events', () => {
  /** A `resourceUtilization` stream over SSE, as its events come: each `next` payload, and whether it completed. */
  async function follow(token: string, on: TestApi = bodies) {
    const response = await fetch(`${on.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'subscription { resourceUtilization(intervalSeconds: 1) { at } }' }),
    });
    expect(response.status).toBe(200);
    const stream = { results: [] as any[], completed: false, ended: Promise.resolve() };
    stream.ended = (async () => {
      let text = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        text += Buffer.from(chunk).toString('utf8');
        let cut: number;
        while ((cut = text.indexOf('\n\n')) >= 0) {
          const message = text.slice(0, cut);
          text = text.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(message)?.[1];
          const data = /^data: (.*)$/m.exec(message)?.[1];
          if (event === 'next' && data) stream.results.push(JSON.parse(data));
          if (event === 'complete') stream.completed = true;
        }
      }
    })();
    return stream;
  }

  it('end with SHUTTING_DOWN when the API closes, so that its close does not wait for them', { timeout: 20_000 }, async () => {
    // A server's close waits for every request to end, and a subscription stream does not end by itself: in
    // `switchyard start` the workers' drain came only after it, so running tasks were killed at the deadline.
    const api = await startTestApi('sse_shutdown');
    const token = await api.token('VIEWER');
    const stream = await follow(token, api);
    await waitFor(async () => stream.results.length >= 1, 5000, 'the first result');
    const started = Date.now();
    await api.close();
    expect(Date.now() - started, 'how long the close took').toBeLessThan(2000);
    await stream.ended;
    expect(stream.results.at(-1)).toEqual({ errors: [expect.objectContaining({ message: 'The server is shutting down: subscribe again', extensions: { code: 'SHUTTING_DOWN' } })] });
  });

  it('are limited per token and replica, as WebSocket connections are (SWITCHYARD_WS_MAX_CONNECTIONS_PER_TOKEN): one more is refused with 429 TOO_MANY_SUBSCRIPTIONS', { timeout: 20_000 }, async () => {
    // Each stream holds a request open and runs its own execution (a taskEvents stream re-reads Postgres while
    // quiet): without a limit one token could open them by the hundred.
    const capped = await startTestApi('sse_cap', { subscriptionLimits: { maxConnectionsPerToken: 2 } });
    const aborts: AbortController[] = [];
    try {
      const token = await capped.token('VIEWER');
      const open = async (bearer: string) => {
        const abort = new AbortController();
        aborts.push(abort);
        const response = await fetch(`${capped.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${bearer}` },
          body: JSON.stringify({ query: 'subscription { resourceUtilization(intervalSeconds: 1) { at } }' }),
          signal: abort.signal,
        });
        if (response.status !== 200) return { status: response.status, text: await response.text(), abort };
        // Running once its first snapshot has come.
        const reader = response.body!.getReader();
        let text = '';
        while (!text.includes('event: next')) text += Buffer.from((await reader.read()).value!).toString('utf8');
        return { status: 200, text, abort };
      };
      // Four at once: the places are taken as the requests come, not once their streams start.
      const burst = await Promise.all([open(token), open(token), open(token), open(token)]);
      expect(burst.map((answer) => answer.status).sort()).toEqual([200, 200, 429, 429]);
      const first = burst.find((answer) => answer.status === 200)!;
      const third = burst.find((answer) => answer.status === 429)!;
      // The refusal comes as the stream's one event, then the stream completes.
      expect(JSON.parse(/^data: (.+)$/m.exec(third.text)![1]!).errors[0]).toMatchObject({ extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } });
      expect(third.text).toMatch(/event: complete/);
      // Per token: another token's stream is welcome.
      expect((await open(await capped.token('VIEWER'))).status).toBe(200);
      // One of the token's streams ends, and there is room again.
      first.abort.abort();
      await waitFor(async () => {
        const again = await open(token);
        if (again.status !== 200) return false;
        again.abort.abort();
        return true;
      }, 5000, 'room for another stream of the token');
    } finally {
      for (const abort of aborts) abort.abort();
      await capped.close();
    }
  });

  it('refuse bad arguments with VALIDATION_FAILED and HTTP 200, as queries do, not a 500', async () => {
    for (const accept of ['text/event-stream', 'application/json']) {
      const response = await fetch(`${bodies.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept, authorization: `Bearer ${bodiesToken}` },
        body: JSON.stringify({ query: 'subscription { resourceUtilization(intervalSeconds: 0) { at } }' }),
      });
      expect(response.status, accept).toBe(200);
      expect(await response.text()).toContain('"code":"VALIDATION_FAILED"');
    }
  });

  it('end, with the token\'s WebSocket connections, when their token is revoked (announced at once) or stops authenticating (found by the re-check)', async () => {
    for (const how of ['revokeApiToken', 'revoked behind the API\'s back'] as const) {
      const name = `revoked-${how}-${randomUUID()}`;
      const token = await bodies.token('VIEWER', { name });
      const row = await bodies.prisma.apiToken.findFirstOrThrow({ where: { name } });
      const stream = await follow(token);
      const socket = await rawClient(bodies, token); // a WebSocket connection of the same token ends with it
      await waitFor(async () => stream.results.length >= 1, 5000, 'the first result');
      if (how === 'revokeApiToken') {
        const res = await bodies.gql(`mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }`, { id: row.id }, bodiesToken);
        expect(res.body.data.revokeApiToken.__typename).toBe('RevokeApiTokenSuccess');
      } else {
        await bodies.prisma.apiToken.update({ where: { id: row.id }, data: { revokedAt: new Date() } });
      }
      await Promise.race([stream.ended, new Promise((_, reject) => setTimeout(() => reject(new Error(`the stream went on (${how})`)), 5000))]);
      expect(stream.results.at(-1)).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
      expect(stream.results.slice(0, -1).every((result) => result.data?.resourceUtilization)).toBe(true);
      expect(await socket.closed, how).toMatchObject({ code: 4403 });
    }
  });
});
