// GraphQL hardening and rate limits as a client sees them (the Caddy edge test covers them through Caddy).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/harness.js';

let api: TestApi;
let token: string;

beforeAll(async () => {
  api = await startTestApi('hardening', {
    app: {
      rateLimits: { api: 5, webhooks: 3 },
      operationLimits: { maxDepth: 6, maxAliases: 3, maxFields: 40, maxTokens: 400, introspection: false },
    },
  });
  token = await api.token('OWNER');
});

afterAll(async () => {
  await api?.close();
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
});
