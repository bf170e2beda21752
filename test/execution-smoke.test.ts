import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/harness.js';
import { startTestWorker, waitFor, type TestWorker } from './support/worker-harness.js';

let api: TestApi;
let worker: TestWorker;
let token: string;

beforeAll(async () => {
  api = await startTestApi('exec_smoke');
  worker = await startTestWorker(api);
  token = await api.token('OWNER');
  const res = await api.gql(
    `mutation { registerOrg(input: { alias: "dev", kind: DEVELOPER, credentials: { instanceUrl: "https://dev.my.salesforce.com", refreshToken: "5Aep861smoke" } }) { __typename } }`,
    {},
    token,
  );
  expect(res.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
});

describe('diagnostic task end to end', () => {
  it('runs in a child, reports progress and succeeds', async () => {
    const res = await api.gql(
      `mutation($p: JSON) { submitTask(input: { type: DIAGNOSTIC, org: "dev", params: $p }) { ... on SubmitTaskSuccess { task { id } } ... on Error { code message } } }`,
      { p: { steps: 3, stepMs: 20, readCredentials: true } },
      token,
    );
    const id = res.body.data.submitTask.task.id;
    const task = await waitFor(async () => {
      const r = await api.gql(`query($id: ID!) { task(id: $id) { status result progress attempts events { edges { node { seq kind payload } } } } }`, { id }, token);
      const t = r.body.data.task;
      return t.status === 'SUCCEEDED' || t.status === 'FAILED' ? t : null;
    });
    expect(task.status).toBe('SUCCEEDED');
    expect(task.progress).toBe(100);
    expect(task.result.credentialFingerprint).toMatch(/^[0-9a-f]{12}$/);
    const kinds = task.events.edges.map((e: any) => e.node.kind);
    expect(kinds[0]).toBe('STATUS');
    expect(kinds).toContain('PROGRESS');
    expect(kinds.at(-1)).toBe('STATUS');
    const seqs = task.events.edges.map((e: any) => e.node.seq);
    expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
  });
});
