import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/harness.js';

let api: TestApi;
let token: string;
let path: string;
let secret: string;

beforeAll(async () => {
  api = await startTestApi('webhooks_smoke');
  token = await api.token('OWNER');
  await api.gql(
    `mutation { registerOrg(input: { alias: "dev", kind: DEVELOPER, credentials: { instanceUrl: "https://dev.my.salesforce.com", refreshToken: "5Aep861hook" } }) { __typename } }`,
    {},
    token,
  );
  const created = await api.gql(`mutation { createWebhookSource(kind: GITHUB, name: "repo") { ... on CreateWebhookSourceSuccess { created { secret source { id path } } } } }`, {}, token);
  ({ secret } = created.body.data.createWebhookSource.created);
  path = created.body.data.createWebhookSource.created.source.path;
  const rule = await api.gql(
    `mutation($s: ID!) { createWebhookRule(input: { sourceId: $s, name: "main", event: "push", ref: "main", taskType: DIAGNOSTIC, org: "dev", priority: 90, queue: CRITICAL }) { __typename ... on Error { code message } } }`,
    { s: created.body.data.createWebhookSource.created.source.id },
    token,
  );
  expect(rule.body.data.createWebhookRule.__typename).toBe('CreateWebhookRuleSuccess');
});

afterAll(async () => {
  await api?.close();
});

function post(body: string, headers: Record<string, string>) {
  return fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

describe('GitHub webhook', () => {
  it('turns a signed push to main into a prioritised task, once', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { full_name: 'acme/app' } });
    const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const headers = { 'x-hub-signature-256': signature, 'x-github-event': 'push', 'x-github-delivery': 'd-1' };
    const first = await post(body, headers);
    expect(first.status).toBe(200);
    const outcome = await first.json();
    expect(outcome).toMatchObject({ status: 'PROCESSED', duplicate: false, event: 'push' });
    expect(outcome.taskIds).toHaveLength(1);
    const task = await api.prisma.task.findUniqueOrThrow({ where: { id: outcome.taskIds[0] } });
    expect(task).toMatchObject({ source: 'WEBHOOK', queue: 'CRITICAL', priority: 90, type: 'DIAGNOSTIC' });
    const again = await (await post(body, headers)).json();
    expect(again).toMatchObject({ duplicate: true, deliveryId: outcome.deliveryId, taskIds: outcome.taskIds });
    expect(await api.prisma.task.count()).toBe(1);
  });

  it('refuses a wrong signature with 401 and stores nothing', async () => {
    const before = await api.prisma.webhookDelivery.count();
    const res = await post('{"ref":"refs/heads/main"}', { 'x-hub-signature-256': 'sha256=' + '0'.repeat(64), 'x-github-event': 'push', 'x-github-delivery': 'd-2' });
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('INVALID_SIGNATURE');
    expect(await api.prisma.webhookDelivery.count()).toBe(before);
  });
});
