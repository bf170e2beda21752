import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { startTestWorker, waitFor, type TestWorker } from './support/worker-harness.js';

let api: TestApi;
let worker: TestWorker;
let sim: SalesforceSim;
let token: string;

beforeAll(async () => {
  sim = await startSalesforceSim();
  sim.addRefreshToken('5Aep861smoke', {});
  api = await startTestApi('sf_smoke', { checkOrgsOnRegister: true });
  worker = await startTestWorker(api);
  token = await api.token('OWNER');
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await sim?.close();
});

describe('org check against the Salesforce simulator', () => {
  it('registering an org queues a check that connects it', async () => {
    const res = await api.gql(
      `mutation($url: String!) { registerOrg(input: { alias: "sim", kind: DEVELOPER, credentials: { instanceUrl: $url, refreshToken: "5Aep861smoke" } }) { __typename } }`,
      { url: sim.instanceUrl },
      token,
    );
    expect(res.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
    const org = await waitFor(async () => {
      const r = await api.gql(`{ org(alias: "sim") { status salesforceOrgId lastCheckedAt } tasks(filter: { type: [ORG_CHECK] }) { edges { node { status queue error { code message } result } } } }`, {}, token);
      return r.body.data.tasks.edges[0]?.node.status === 'SUCCEEDED' || r.body.data.tasks.edges[0]?.node.status === 'FAILED' ? r.body.data : null;
    });
    expect(org.tasks.edges[0].node.error).toBeNull();
    expect(org.tasks.edges[0].node.queue).toBe('CRITICAL');
    expect(org.org.status).toBe('CONNECTED');
    expect(org.org.salesforceOrgId).toBe(sim.org.Id);
    expect(org.tasks.edges[0].node.result.organizationName).toBe(sim.org.Name);
  });
});
