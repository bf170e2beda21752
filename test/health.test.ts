import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/harness.js';

let api: TestApi;
/** The same API wired to a Redis that is not there (nothing listens on port 1). */
let redisDown: TestApi;

beforeAll(async () => {
  [api, redisDown] = await Promise.all([
    startTestApi('health'),
    startTestApi('health_down', { redisUrl: 'redis://127.0.0.1:1' }),
  ]);
  // BullMQ prints every reconnect failure of a queue without an error listener; keep the output readable.
  for (const queue of ['CRITICAL', 'NORMAL', 'BATCH'] as const) redisDown.queues.get(queue).on('error', () => {});
});
afterAll(async () => {
  await Promise.all([api?.close(), redisDown?.close()]);
});

describe('/healthz', () => {
  it('answers 200 with a JSON status', async () => {
    const res = await fetch(`${api.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('stays 200 while Redis is down: the process is alive', async () => {
    const res = await fetch(`${redisDown.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(`${api.url}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});

describe('/readyz', () => {
  it('answers 200 when Postgres and Redis both answer', async () => {
    const res = await fetch(`${api.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      status: 'ready',
      ready: true,
      checks: { postgres: { ok: true }, redis: { ok: true } },
    });
  });

  it('answers 503 quickly, naming the Redis check, when Redis is unreachable', async () => {
    const started = Date.now();
    const res = await fetch(`${redisDown.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; ready: boolean; checks: Record<string, { ok: boolean; error?: string }> };
    expect(body.status).toBe('unavailable');
    expect(body.ready).toBe(false);
    expect(body.checks.postgres).toEqual({ ok: true });
    expect(body.checks.redis!.ok).toBe(false);
    expect(body.checks.redis!.error).toEqual(expect.any(String));
    expect(body.checks.redis!.error!.length).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(3000);
  });

  it('keeps answering 503 on repeated probes (no hang once the client is reconnecting)', async () => {
    for (let i = 0; i < 3; i += 1) {
      const started = Date.now();
      const res = await fetch(`${redisDown.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(3000);
    }
  });

  it('answers HEAD with the status only', async () => {
    expect((await fetch(`${api.url}/readyz`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${redisDown.url}/readyz`, { method: 'HEAD' })).status).toBe(503);
  });
});

describe('other routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/'],
    ['GET', '/graphqlx'],
    ['POST', '/healthz'],
    ['DELETE', '/readyz'],
  ])('%s %s is a JSON 404 with code NOT_FOUND', async (method, path) => {
    const res = await fetch(`${api.url}${path}`, { method });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).toContain(path);
    expect(body.error.message).toContain(method);
  });

  it('ignores the query string when routing', async () => {
    expect((await fetch(`${api.url}/healthz?verbose=1`)).status).toBe(200);
    expect((await fetch(`${api.url}/nope?x=/healthz`)).status).toBe(404);
  });

  it('tags every response with a request id, keeping a well-formed one from the caller', async () => {
    const own = await fetch(`${api.url}/healthz`, { headers: { 'x-request-id': 'caddy-req.123:abc' } });
    expect(own.headers.get('x-request-id')).toBe('caddy-req.123:abc');
    const generated = await fetch(`${api.url}/nope`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('GraphiQL', () => {
  it('is served at GET /graphql to a browser, without a token', async () => {
    const res = await fetch(`${api.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html.toLowerCase()).toContain('graphiql');
    expect(html).toContain('<title>Switchyard</title>');
  });

  it('is not served to a JSON client: GET /graphql without a query is a GraphQL error', async () => {
    const res = await fetch(`${api.url}/graphql`, { headers: { accept: 'application/json' } });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { data?: unknown; errors?: Array<{ message: string }> };
    expect(body.data).toBeUndefined();
    expect(body.errors?.length).toBeGreaterThan(0);
  });
});
