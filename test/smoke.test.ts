import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/harness.js';

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi('smoke');
});
afterAll(async () => {
  await api?.close();
});

describe('server', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { postgres: { ok: true }, redis: { ok: true } } });
  });

  it('serves the viewer to a token holder', async () => {
    const token = await api.token('VIEWER');
    const res = await api.gql('{ viewer { userName role permissions } }', {}, token);
    expect(res.status).toBe(200);
    expect(res.body.data.viewer).toEqual({ userName: 'viewer-user', role: 'VIEWER', permissions: ['read'] });
  });
});
