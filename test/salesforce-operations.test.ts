// Every Salesforce operation end to end through GraphQL, against the Salesforce simulator
// (test/fixtures/salesforce-sim.ts): a real API, a real worker forking real children (from dist/), jsforce in
// the child talking HTTP to the simulator. ORG_CHECK (registration, revoked credentials, rotation), RETRIEVE
// (members, package.xml, download, failure), artifact upload, DEPLOY (progress, failures, options), VALIDATE
// and QUICK_DEPLOY, cancellation mid-deploy, session expiry, API limits and server errors; and at the end a
// credential canary over everything Switchyard answered, logged and stored.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import jsforce from 'jsforce';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readZip, startSalesforceSim, type SalesforceSim } from './fixtures/salesforce-sim.js';
import { postZip, startTestApi, testDatabaseUrl, type GraphQLResponse, type TestApi } from './support/harness.js';
import { canary, encodings } from './support/leak-search.js';
import { samplePackage } from './support/salesforce-package.js';
import { FINAL_STATUSES, startTestWorker, waitFor, waitForTaskStatus, type TestWorker } from './support/worker-harness.js';
import { pollRetries } from '../src/workers/operations/salesforce/poll-status.js';

const MAIN = 'sfops';
const OTHER = 'sfops-other';
const clientId = canary('3MVG9canaryClient');
const clientSecret = canary('canarySecret');
const mainRefreshToken = canary('5Aep861canaryMain');
const otherRefreshToken = canary('5Aep861canaryOther');
const rotatedRefreshToken = canary('5Aep861canaryRotated');
const secrets = [clientSecret, mainRefreshToken, otherRefreshToken, rotatedRefreshToken];

let api: TestApi;
let worker: TestWorker;
/** Log lines of workers a test shut down and replaced, for the canary search at the end. */
const retiredWorkerLogLines: string[] = [];
let sim: SalesforceSim;
let token: string;
/** Every GraphQL (and upload) response body, for the canary search at the end. */
const responses: string[] = [];

beforeAll(async () => {
  sim = await startSalesforceSim({ org: { Name: 'Acme Ops Production', InstanceName: 'NA321', OrganizationType: 'Enterprise Edition', IsSandbox: false } });
  sim.addRefreshToken(mainRefreshToken, { clientId, clientSecret });
  sim.addRefreshToken(otherRefreshToken, { clientId, clientSecret });
  sim.addRefreshToken(rotatedRefreshToken, { clientId, clientSecret });
  sim.setLimits({ DataStorageMB: { Max: 5, Remaining: 3 } });
  api = await startTestApi('sf_ops', { checkOrgsOnRegister: true });
  worker = await startTestWorker(api);
  token = await api.token('OWNER');
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await sim?.close();
});

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

async function gqlRaw(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  const res = await api.gql(query, variables, token);
  responses.push(JSON.stringify(res.body));
  return res;
}

async function gql<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await gqlRaw(query, variables);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  return res.body.data as T;
}

const credentials = (refreshToken: string) => ({ instanceUrl: sim.instanceUrl, refreshToken, clientId, clientSecret });

const fieldErrors = '... on Error { code message } ... on ValidationError { fieldErrors { path message } }';

interface SubmitOptions {
  org?: string;
  maxAttempts?: number;
  retryBackoffMs?: number;
  timeoutMs?: number;
  runAt?: Date;
}

async function submitRaw(type: string, params: Record<string, unknown>, options: SubmitOptions = {}) {
  const data = await gql(
    `mutation($input: SubmitTaskInput!) { submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id status queue } } ${fieldErrors} } }`,
    {
      input: {
        type,
        org: options.org ?? MAIN,
        params,
        maxAttempts: options.maxAttempts ?? 1,
        retryBackoffMs: options.retryBackoffMs ?? 100,
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.runAt ? { runAt: options.runAt.toISOString() } : {}),
      },
    },
  );
  return data.submitTask;
}

async function submit(type: string, params: Record<string, unknown>, options: SubmitOptions = {}): Promise<string> {
  const result = await submitRaw(type, params, options);
  expect(result.__typename, JSON.stringify(result)).toBe('SubmitTaskSuccess');
  return result.task.id as string;
}

interface TaskEventNode {
  seq: number;
  kind: 'STATUS' | 'PROGRESS' | 'LOG' | 'RESULT';
  payload: any;
}

interface TaskView {
  id: string;
  type: string;
  status: string;
  queue: string;
  attempts: number;
  maxAttempts: number;
  progress: number;
  cancelRequestedAt: string | null;
  error: { code: string; message: string } | null;
  result: any;
  events: TaskEventNode[];
}

const TASK_FIELDS = `id type status queue attempts maxAttempts progress cancelRequestedAt error { code message } result
  events(first: 100) { edges { node { seq kind payload } } }`;

async function getTask(id: string): Promise<TaskView> {
  const data = await gql(`query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, { id });
  const task = data.task;
  return { ...task, events: task.events.edges.map((e: { node: TaskEventNode }) => e.node) };
}

const waitTask = (id: string, statuses = FINAL_STATUSES, timeoutMs = 40_000) => waitForTaskStatus(getTask, id, statuses, timeoutMs);

/** The task's UUID from its global id (base64 "Task:uuid"). */
const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').split(':')[1]!;

const progressEvents = (task: TaskView) => task.events.filter((e) => e.kind === 'PROGRESS').map((e) => e.payload);
/** Status polls failing in a row that end an attempt (the ones before are tried again within it). */
const failedPollsEndingAnAttempt = pollRetries + 1;

const statusEvents = (task: TaskView) => task.events.filter((e) => e.kind === 'STATUS').map((e) => e.payload);

/** A task that ran twice: its first attempt failed with `after` and was retried, the second ended `final`. */
function expectRetriedOnce(task: TaskView, after: string, final: string): void {
  expect(task.status).toBe(final);
  expect(task.attempts).toBe(2);
  expect(statusEvents(task).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'QUEUED', 'RUNNING', final]);
  expect(statusEvents(task)[2]).toMatchObject({ after, retryInMs: 100 });
}

/**
 * Waits until the task's deployment has started, then shuts the worker down (a 50 ms drain, after which the
 * running child is stopped for the shutdown) and starts another. Returns the deploy id.
 */
async function restartWorkerOnceDeploying(taskId: string): Promise<string> {
  const started = await waitFor(async () => progressEvents(await getTask(taskId)).find((p) => p.phase === 'started'), 15_000, 'the deployment to start');
  await replaceWorker({}, 50);
  return started.details.deployId as string;
}

/** Shuts the worker down (its log kept for the canary search) and starts another with `options`. */
async function replaceWorker(options: Parameters<typeof startTestWorker>[1] = {}, drainMs?: number): Promise<void> {
  await worker.close(drainMs);
  retiredWorkerLogLines.push(...worker.logLines);
  worker = await startTestWorker(api, options);
}

/** The task ended CANCELLED on its second attempt, having started one deployment and cancelled it once. */
function expectDeploymentCancelledOnce(task: TaskView, from: number, deployId: string): void {
  expect(task).toMatchObject({ status: 'CANCELLED', attempts: 2, error: { code: 'CANCELLED' } });
  const operations = soapCalls(from).map((r) => r.operation);
  expect(operations.filter((o) => o === 'deploy')).toHaveLength(1);
  expect(operations.filter((o) => o === 'cancelDeploy')).toHaveLength(1);
  expect(sim.getDeploy(deployId)!.canceled).toBe(true);
}

/** Waits until the task's first attempt has failed and it is QUEUED for its retry. */
function waitForRetry(taskId: string): Promise<TaskView> {
  return waitFor(async () => {
    const task = await getTask(taskId);
    return task.status === 'QUEUED' && task.attempts === 1 ? task : null;
  }, 15_000, 'the retry to be queued');
}

/**
 * A DEPLOY of `artifactId` whose first attempt started a deployment (finishing after `pollsToFinish` polls)
 * and failed on its first poll, now QUEUED for a retry 60 s away. Returns the task, its deploy id and the
 * simulator's request sequence number before it.
 */
async function deploymentWaitingForRetry(artifactId: string, pollsToFinish: number): Promise<{ id: string; deployId: string; from: number }> {
  sim.deployPlan({ pollsToFinish });
  sim.failNext('checkDeployStatus', 500, failedPollsEndingAnAttempt);
  const from = lastSeq();
  const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 3, retryBackoffMs: 60_000 });
  const waiting = await waitForRetry(id);
  return { id, deployId: progressEvents(waiting).find((p) => p.phase === 'started')!.details.deployId, from };
}

function expectOrderedLog(task: TaskView): void {
  expect(task.events.map((e) => e.seq)).toEqual(task.events.map((_, i) => i + 1));
  expect(task.events[0]).toMatchObject({ kind: 'STATUS', payload: { status: 'QUEUED' } });
  expect(task.events.at(-1)).toMatchObject({ kind: 'STATUS', payload: { status: task.status } });
}

const UPLOAD = `mutation($file: File!) { uploadArtifact(file: $file) { __typename
  ... on UploadArtifactSuccess { artifact { id fileName sha256 sizeBytes source createdBy downloadPath } } ${fieldErrors} } }`;

/** uploadArtifact through the GraphQL multipart request spec. */
async function upload(bytes: Uint8Array, fileName: string): Promise<any> {
  const { status, text } = await postZip(api.url, token, UPLOAD, bytes, fileName);
  responses.push(text);
  expect(status, text).toBe(200);
  const body = JSON.parse(text);
  expect(body.errors, text).toBeUndefined();
  return body.data.uploadArtifact;
}

async function download(path: string, bearer: string | null = token): Promise<Response> {
  return fetch(`${api.url}${path}`, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
}

/** A jsforce connection of the test's own to the main org, to look at (and so advance) a deployment. */
const salesforce = () =>
  new jsforce.Connection({ oauth2: { clientId, clientSecret, loginUrl: sim.loginUrl }, instanceUrl: sim.instanceUrl, refreshToken: mainRefreshToken, version: '62.0' });

const soapCalls = (from: number) => sim.requests.filter((r) => r.seq > from && r.operation);
const lastSeq = () => sim.requests.at(-1)?.seq ?? 0;

// ---------------------------------------------------------------------------------------------------------
// ORG_CHECK
// ---------------------------------------------------------------------------------------------------------

describe('ORG_CHECK', { timeout: 60_000 }, () => {
  it('registerOrg queues a check on CRITICAL that connects the org and reports what it is', async () => {
    const registered = await gql(
      `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename ... on RegisterOrgSuccess { org { alias status salesforceOrgId lastCheckedAt } } ${fieldErrors} } }`,
      // A sandbox: the deployments below run NoTestRun, which Switchyard refuses for a PRODUCTION org, as Salesforce does.
      { input: { alias: MAIN, kind: 'SANDBOX', credentials: credentials(mainRefreshToken) } },
    );
    expect(registered.registerOrg).toMatchObject({ __typename: 'RegisterOrgSuccess', org: { alias: MAIN, status: 'UNVERIFIED', salesforceOrgId: null, lastCheckedAt: null } });

    const listed = await gql(`{ tasks(filter: { org: "${MAIN}", type: [ORG_CHECK] }) { totalCount edges { node { id queue source } } } }`);
    expect(listed.tasks.totalCount).toBe(1);
    expect(listed.tasks.edges[0].node).toMatchObject({ queue: 'CRITICAL', source: 'API' });

    const task = await waitTask(listed.tasks.edges[0].node.id);
    expect(task.error).toBeNull();
    expect(task).toMatchObject({ type: 'ORG_CHECK', status: 'SUCCEEDED', queue: 'CRITICAL', attempts: 1 });
    expect(task.result).toMatchObject({
      organizationId: sim.org.Id,
      organizationName: 'Acme Ops Production',
      organizationType: 'Enterprise Edition',
      isSandbox: false,
      instanceName: 'NA321',
      instanceUrl: sim.instanceUrl,
      username: sim.user.username,
      userId: sim.user.id,
    });
    expect(task.result.limits.DataStorageMB).toEqual({ max: 5, remaining: 3 });
    expect(task.result.limits.DailyApiRequests.max).toBe(15000);
    expect(task.result.limits.DailyApiRequests.remaining).toBeLessThan(15000);
    expectOrderedLog(task);
    expect(progressEvents(task).map((p) => p.phase)).toEqual(['authenticating', 'reading identity', 'reading the organization', 'reading API limits', 'done']);

    const { org } = await gql(`{ org(alias: "${MAIN}") { status salesforceOrgId lastCheckedAt instanceUrl } }`);
    expect(org.status).toBe('CONNECTED');
    expect(org.salesforceOrgId).toBe(sim.org.Id);
    expect(Date.now() - Date.parse(org.lastCheckedAt)).toBeLessThan(60_000);

    // The child redeemed the stored credentials at the token endpoint, with the registered consumer key and secret.
    const grants = sim.requests.filter((r) => r.path === '/services/oauth2/token' && r.refreshToken === mainRefreshToken);
    expect(grants.length).toBeGreaterThanOrEqual(1);
    expect(grants[0]).toMatchObject({ status: 200, grantType: 'refresh_token', clientId, sentClientSecret: true });
  });

  it('a revoked refresh token fails the check with ORG_AUTH_FAILED, once, and marks the org AUTH_FAILED; rotation queues a new check', async () => {
    const registered = await gql(
      `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename } }`,
      { input: { alias: OTHER, kind: 'SANDBOX', credentials: credentials(otherRefreshToken) } },
    );
    expect(registered.registerOrg.__typename).toBe('RegisterOrgSuccess');
    const first = await gql(`{ tasks(filter: { org: "${OTHER}", type: [ORG_CHECK] }) { edges { node { id } } } }`);
    expect((await waitTask(first.tasks.edges[0].node.id)).status).toBe('SUCCEEDED');
    expect((await gql(`{ org(alias: "${OTHER}") { status } }`)).org.status).toBe('CONNECTED');

    expect(sim.revokeRefreshToken(otherRefreshToken)).toBe(true);
    const id = await submit('ORG_CHECK', {}, { org: OTHER, maxAttempts: 3 });
    const failed = await waitTask(id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error!.code).toBe('ORG_AUTH_FAILED');
    expect(failed.error!.message).toMatch(/expired access\/refresh token/);
    // Not retried although attempts remained: no requeue, one run.
    expect(failed.attempts).toBe(1);
    expect(statusEvents(failed).map((s) => s.status)).toEqual(['QUEUED', 'RUNNING', 'FAILED']);
    expect(statusEvents(failed).at(-1)).toMatchObject({ code: 'ORG_AUTH_FAILED' });
    expect(sim.requests.filter((r) => r.refreshToken === otherRefreshToken && r.errorCode === 'invalid_grant')).toHaveLength(1);
    const afterFailure = (await gql(`{ org(alias: "${OTHER}") { status lastCheckedAt } }`)).org;
    expect(afterFailure.status).toBe('AUTH_FAILED');

    const rotated = await gql(
      `mutation($c: OrgCredentialsInput!) { rotateOrgCredentials(alias: "${OTHER}", credentials: $c) { __typename ... on RotateOrgCredentialsSuccess { org { status } } ${fieldErrors} } }`,
      { c: credentials(rotatedRefreshToken) },
    );
    expect(rotated.rotateOrgCredentials).toMatchObject({ __typename: 'RotateOrgCredentialsSuccess', org: { status: 'UNVERIFIED' } });
    const checks = await gql(`{ tasks(filter: { org: "${OTHER}", type: [ORG_CHECK] }) { totalCount edges { node { id queue } } } }`);
    expect(checks.tasks.totalCount).toBe(3);
    const newest = checks.tasks.edges[0].node;
    expect(newest.queue).toBe('CRITICAL');
    expect(newest.id).not.toBe(id);
    expect((await waitTask(newest.id)).status).toBe('SUCCEEDED');
    expect((await gql(`{ org(alias: "${OTHER}") { status } }`)).org.status).toBe('CONNECTED');
    expect(sim.requests.some((r) => r.refreshToken === rotatedRefreshToken && r.status === 200)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------------
// RETRIEVE and artifacts
// ---------------------------------------------------------------------------------------------------------

describe('RETRIEVE', { timeout: 60_000 }, () => {
  it('retrieves members: ordered progress, an artifact whose download is the zip the org built', async () => {
    sim.retrievePlan({ pollsToFinish: 3, files: { 'classes/Extra.cls': 'public class Extra { /* from the sim */ }' } });
    const id = await submit('RETRIEVE', { members: [{ type: 'ApexClass', members: ['Foo', 'Bar'] }], pollIntervalMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    expect(task.queue).toBe('BATCH');
    expectOrderedLog(task);
    const progress = progressEvents(task);
    expect(progress.map((p) => p.phase)).toEqual(['authenticating', 'Pending', 'InProgress', 'Succeeded', 'stored']);
    expect(progress.map((p) => p.percent)).toEqual([2, 45, 60, 95, 100]);
    expect(task.events.map((e) => e.kind).slice(-2)).toEqual(['RESULT', 'STATUS']);
    expect(task.events.find((e) => e.kind === 'RESULT')!.payload).toEqual(task.result);

    const retrieved = sim.getRetrieve(task.result.retrieveId)!;
    expect(retrieved).toMatchObject({ status: 'Succeeded', singlePackage: true, apiVersion: '62.0', types: [{ name: 'ApexClass', members: ['Foo', 'Bar'] }] });
    expect(task.result).toMatchObject({ retrieveId: retrieved.id, status: 'Succeeded', artifactId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect(task.result.fileCount).toBe(3); // Foo, Bar, package.xml

    const { artifacts } = await gql(`{ artifacts(first: 10) { totalCount edges { node { id fileName sha256 sizeBytes source createdBy downloadPath } } } }`);
    const artifact = artifacts.edges.map((e: any) => e.node).find((a: any) => a.downloadPath === `/artifacts/${task.result.artifactId}`);
    expect(artifact).toMatchObject({ source: 'RETRIEVE', createdBy: `task:${rawId(id)}`, fileName: `retrieve-${rawId(id)}.zip` });

    const response = await download(artifact.downloadPath);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length).toBe(artifact.sizeBytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(artifact.sha256);
    const files = readZip(bytes);
    expect([...files.keys()]).toEqual(retrieved.zipEntries);
    expect([...files.keys()]).toEqual([
      'package.xml',
      'classes/Foo.cls',
      'classes/Foo.cls-meta.xml',
      'classes/Bar.cls',
      'classes/Bar.cls-meta.xml',
      'classes/Extra.cls',
    ]);
    expect(files.get('classes/Extra.cls')!.toString()).toBe('public class Extra { /* from the sim */ }');
    expect(files.get('classes/Foo.cls')!.toString()).toContain('class Foo');
    expect(files.get('package.xml')!.toString()).toMatch(/<members>Foo<\/members>\s*<members>Bar<\/members>\s*<name>ApexClass<\/name>/);

    expect((await download(artifact.downloadPath, null)).status).toBe(401);
    expect((await download(artifact.downloadPath, 'not-a-token')).status).toBe(401);
    // An unknown id, or one whose %-escapes do not decode, is the same 404.
    for (const path of [`/artifacts/${randomUUID()}`, '/artifacts/%ZZ', '/artifacts/%E2%82', '/artifacts/%']) {
      const missing = await download(path);
      expect(missing.status, path).toBe(404);
      expect(await missing.json()).toMatchObject({ error: { code: 'ARTIFACT_NOT_FOUND' } });
    }
  });

  it('retrieves a package.xml', async () => {
    const packageXml = `<?xml version="1.0" encoding="UTF-8"?>
<Package xmlns="http://soap.sforce.com/2006/04/metadata">
  <types><members>OnAccount</members><name>ApexTrigger</name></types>
  <types><members>Account</members><members>Invoice__c</members><name>CustomObject</name></types>
  <version>61.0</version>
</Package>`;
    const id = await submit('RETRIEVE', { packageXml, pollIntervalMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    const retrieved = sim.getRetrieve(task.result.retrieveId)!;
    expect(retrieved.types).toEqual([
      { name: 'ApexTrigger', members: ['OnAccount'] },
      { name: 'CustomObject', members: ['Account', 'Invoice__c'] },
    ]);
    const bytes = Buffer.from(await (await download(`/artifacts/${task.result.artifactId}`)).arrayBuffer());
    expect([...readZip(bytes).keys()]).toEqual(retrieved.zipEntries);
    expect(retrieved.zipEntries).toEqual(expect.arrayContaining(['triggers/OnAccount.trigger', 'objects/Account.object', 'objects/Invoice__c.object']));
    const percents = progressEvents(task).map((p) => p.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
  });

  it('a retrieve Salesforce fails ends FAILED with RETRIEVE_FAILED, without an artifact', async () => {
    const before = (await gql(`{ artifacts { totalCount } }`)).artifacts.totalCount;
    sim.retrievePlan({ fail: { errorStatusCode: 'UNKNOWN_EXCEPTION', errorMessage: 'The retrieve hit an internal error' } });
    const id = await submit('RETRIEVE', { members: [{ type: 'ApexClass', members: ['Foo'] }], pollIntervalMs: 100 }, { maxAttempts: 2 });
    const task = await waitTask(id);
    expect(task.status).toBe('FAILED');
    expect(task.error!.code).toBe('RETRIEVE_FAILED');
    expect(task.error!.message).toMatch(/Failed: The retrieve hit an internal error/);
    expect(task.attempts).toBe(1);
    expect((await gql(`{ artifacts { totalCount } }`)).artifacts.totalCount).toBe(before);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Uploads, DEPLOY, VALIDATE, QUICK_DEPLOY
// ---------------------------------------------------------------------------------------------------------

describe('DEPLOY, VALIDATE and QUICK_DEPLOY', { timeout: 60_000 }, () => {
  const zip = samplePackage(['Foo', 'Bar', 'Baz']);
  let artifactId: string;
  let validateTaskId: string;
  let deployTaskId: string;

  it('uploads a zip with the multipart request spec and refuses what is not a zip', async () => {
    const uploaded = await upload(zip, 'release 1.zip');
    expect(uploaded.__typename).toBe('UploadArtifactSuccess');
    expect(uploaded.artifact).toMatchObject({
      source: 'UPLOAD',
      fileName: 'release_1.zip',
      sizeBytes: zip.length,
      sha256: createHash('sha256').update(zip).digest('hex'),
    });
    artifactId = uploaded.artifact.id;
    const back = Buffer.from(await (await download(uploaded.artifact.downloadPath)).arrayBuffer());
    expect(back.equals(zip)).toBe(true);

    const notZip = await upload(Buffer.from('this is not a zip archive'), 'notes.txt');
    expect(notZip.__typename).toBe('ValidationError');
    expect(notZip.fieldErrors.map((f: any) => f.path)).toEqual([['file']]);
  });

  it('deploys an uploaded artifact with specified tests: options and zip reach Salesforce, progress counts grow', async () => {
    sim.deployPlan({
      components: 3,
      tests: 4,
      pollsToFinish: 5,
      coverageWarnings: [{ name: 'Baz', message: 'Test coverage of selected Apex Class is 60%, at least 75% test coverage is required' }],
    });
    deployTaskId = await submit('DEPLOY', { artifactId, testLevel: 'RunSpecifiedTests', runTests: ['FooTest', 'BarTest'], pollIntervalMs: 100 });
    const task = await waitTask(deployTaskId);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    expect(task.progress).toBe(100);
    expectOrderedLog(task);

    const { deployId } = task.result;
    const seen = sim.getDeploy(deployId)!;
    expect(seen).toBeDefined();
    expect(seen.options).toMatchObject({
      checkOnly: false,
      testLevel: 'RunSpecifiedTests',
      runTests: ['FooTest', 'BarTest'],
      rollbackOnError: true,
      ignoreWarnings: false,
      singlePackage: true,
    });
    expect(seen.zipBytes).toBe(zip.length);
    expect(seen.zipEntries).toEqual([...readZip(zip).keys()]);
    expect(seen).toMatchObject({ status: 'Succeeded', done: true, success: true, polls: 5 });

    // First the deploy id alone, as soon as the deployment started (what a retry would follow), then each poll.
    const [started, ...counted] = progressEvents(task).filter((p) => p.details);
    expect(started).toEqual({ percent: 5, phase: 'started', details: { deployId } });
    expect(counted.length).toBe(5);
    for (const p of counted) expect(p.details).toMatchObject({ deployId, componentsTotal: 3, testsTotal: 4 });
    const deployed = counted.map((p) => p.details.componentsDeployed);
    const tests = counted.map((p) => p.details.testsCompleted);
    expect(deployed).toEqual([0, 1, 1, 2, 3]);
    expect(tests).toEqual([0, 1, 2, 3, 4]);
    // Percent never goes back: 2 while authenticating, then the deployment's share, 100 at the end.
    const percents = progressEvents(task).map((p) => p.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents[0]).toBe(2);
    expect(percents.at(-1)).toBe(100);
    expect(counted.map((p) => p.phase.split(':')[0])).toEqual(['Pending', 'InProgress', 'InProgress', 'InProgress', 'Succeeded']);

    expect(task.result).toMatchObject({
      deployId,
      status: 'Succeeded',
      success: true,
      checkOnly: false,
      components: { total: 3, deployed: 3, errors: 0 },
      tests: { total: 4, completed: 4, errors: 0 },
      componentFailures: [],
      testFailures: [],
      coverageWarnings: [{ name: 'Baz', message: 'Test coverage of selected Apex Class is 60%, at least 75% test coverage is required' }],
    });
    expect(task.events.find((e) => e.kind === 'RESULT')!.payload).toEqual(task.result);
  });

  it('component failures fail the task with DEPLOY_FAILED and the failures as its result', async () => {
    sim.deployPlan({
      components: 3,
      pollsToFinish: 2,
      componentFailures: [{ fullName: 'Foo', lineNumber: 12, columnNumber: 5, problem: 'Variable does not exist: accountId' }],
    });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'RunLocalTests', pollIntervalMs: 100 }, { maxAttempts: 3 });
    const task = await waitTask(id);
    expect(task.status).toBe('FAILED');
    expect(task.error!.code).toBe('DEPLOY_FAILED');
    expect(task.error!.message).toMatch(/Failed: 1 component error/);
    expect(task.attempts).toBe(1);
    expect(task.result).toMatchObject({ status: 'Failed', success: false, components: { total: 3, errors: 1 }, tests: { total: 0 } });
    expect(task.result.componentFailures).toEqual([
      { file: 'classes/Foo.cls', fullName: 'Foo', type: 'ApexClass', line: 12, column: 5, problem: 'Variable does not exist: accountId', problemType: 'Error' },
    ]);
    expect(sim.getDeploy(task.result.deployId)!.options.testLevel).toBe('RunLocalTests');
  });

  it('test failures fail the task with DEPLOY_FAILED and the failing methods as its result', async () => {
    sim.deployPlan({
      pollsToFinish: 3,
      testFailures: [{ name: 'FooTest', methodName: 'rejectsBadInput', message: 'System.AssertException: Assertion Failed: expected 1, got 2', stackTrace: 'Class.FooTest.rejectsBadInput: line 7, column 1' }],
    });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'RunSpecifiedTests', runTests: ['FooTest', 'BarTest'], pollIntervalMs: 100 });
    const task = await waitTask(id);
    expect(task.status).toBe('FAILED');
    expect(task.error!.code).toBe('DEPLOY_FAILED');
    expect(task.error!.message).toMatch(/1 test failure/);
    expect(task.result.tests).toEqual({ total: 2, completed: 1, errors: 1 });
    expect(task.result.testFailures).toEqual([
      { name: 'FooTest', method: 'rejectsBadInput', message: 'System.AssertException: Assertion Failed: expected 1, got 2', stackTrace: 'Class.FooTest.rejectsBadInput: line 7, column 1' },
    ]);
  });

  it('VALIDATE runs a check-only deployment and records its deploy id', async () => {
    sim.deployPlan({ pollsToFinish: 3 });
    validateTaskId = await submit('VALIDATE', { artifactId, testLevel: 'RunSpecifiedTests', runTests: ['FooTest'], pollIntervalMs: 100 });
    const task = await waitTask(validateTaskId);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    expect(task.result).toMatchObject({ status: 'Succeeded', success: true, checkOnly: true, tests: { total: 1, completed: 1, errors: 0 } });
    expect(task.result.deployId).toMatch(/^0Af[0-9A-Za-z]{15}$/);
    expect(sim.getDeploy(task.result.deployId)!.options).toMatchObject({ checkOnly: true, testLevel: 'RunSpecifiedTests', runTests: ['FooTest'] });
  });

  it('QUICK_DEPLOY promotes the validation of a VALIDATE task', async () => {
    const validation = (await getTask(validateTaskId)).result.deployId as string;
    const from = lastSeq();
    // The VALIDATE task's id as GraphQL returned it (its global id).
    const id = await submit('QUICK_DEPLOY', { validationTaskId: validateTaskId, pollIntervalMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    expect(task.result.validationId).toBe(validation);
    expect(task.result.deployId).not.toBe(validation);
    expect(task.result).toMatchObject({ status: 'Succeeded', success: true, checkOnly: false });
    expect(sim.getDeploy(task.result.deployId)).toMatchObject({ validatedDeployRequestId: validation, done: true, success: true });
    expect(sim.getDeploy(validation)!.quickDeployedAs).toBe(task.result.deployId);
    expect(soapCalls(from).filter((r) => r.operation === 'deployRecentValidation' && r.status === 200)).toHaveLength(1);
    expect(soapCalls(from).some((r) => r.operation === 'deploy')).toBe(false);
    // The validation task's deploy id was filled into the params at submission.
    const params = await gql(`query($id: ID!) { task(id: $id) { params } }`, { id });
    expect(params.task.params).toMatchObject({ validationTaskId: rawId(validateTaskId), deployId: validation });
  });

  it('refuses a QUICK_DEPLOY of a task that is not a validation, and a DEPLOY of an unknown artifact', async () => {
    // A SUCCEEDED DEPLOY (it has a deploy id, but it is not a validation), and a UUID that is no task at all.
    expect((await getTask(deployTaskId)).result.deployId).toBeTruthy();
    for (const validationTaskId of [deployTaskId, rawId(deployTaskId), randomUUID(), 'not-a-task-id']) {
      const refused = await submitRaw('QUICK_DEPLOY', { validationTaskId });
      expect(refused.__typename).toBe('ValidationError');
      expect(refused.fieldErrors).toEqual([{ path: ['params', 'validationTaskId'], message: 'must be a SUCCEEDED VALIDATE task on the same org' }]);
    }

    const unknown = await submitRaw('DEPLOY', { artifactId: randomUUID(), testLevel: 'NoTestRun' });
    expect(unknown.__typename).toBe('ValidationError');
    expect(unknown.fieldErrors).toEqual([{ path: ['params', 'artifactId'], message: 'is not the id of an uploaded or retrieved artifact' }]);
    const garbage = await submitRaw('DEPLOY', { artifactId: 'no-such-artifact', testLevel: 'NoTestRun' });
    expect(garbage.__typename).toBe('ValidationError');
    expect(garbage.fieldErrors.map((f: any) => f.path)).toEqual([['params', 'artifactId']]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Cancellation, session expiry, limits and server errors
// ---------------------------------------------------------------------------------------------------------

describe('cancellation and Salesforce trouble', { timeout: 60_000 }, () => {
  let artifactId: string;

  beforeAll(async () => {
    const uploaded = await upload(samplePackage(['Alpha', 'Beta']), 'trouble.zip');
    artifactId = uploaded.artifact.id;
  });

  /** Waits until the task's deployment is in progress in Salesforce (past Pending); returns its deploy id. */
  function deploymentPolled(id: string): Promise<{ deployId: string }> {
    return waitFor(
      async () => {
        const task = await getTask(id);
        const polls = progressEvents(task).filter((p) => p.details);
        const inProgress = polls.some((p) => p.phase.startsWith('InProgress'));
        return task.status === 'RUNNING' && inProgress ? { deployId: polls[0].details.deployId as string } : null;
      },
      15_000,
      'the deployment to be polled',
    );
  }

  const mayStillRun = /could not be cancelled in Salesforce and may still be running/;

  it('cancelTask on a running deployment cancels it in Salesforce and ends CANCELLED', async () => {
    sim.deployPlan({ components: 2, pollsToFinish: 500 });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 });
    const running = await deploymentPolled(id);
    const cancelled = await gql(
      `mutation($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { status cancelRequestedAt } } ${fieldErrors} } }`,
      { id },
    );
    expect(cancelled.cancelTask).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'RUNNING', cancelRequestedAt: expect.any(String) } });
    const task = await waitTask(id);
    expect(task.status).toBe('CANCELLED');
    expect(task.error!.code).toBe('CANCELLED');
    const cancels = sim.requests.filter((r) => r.operation === 'cancelDeploy');
    expect(cancels).toHaveLength(1);
    expect(cancels[0]!.status).toBe(200);
    expect(sim.getDeploy(running.deployId)).toMatchObject({ canceled: true, status: 'Canceled', done: true });
    expect(task.events.some((e) => e.kind === 'LOG' && /Cancelling deployment/.test(e.payload.message))).toBe(true);
    expect(task.events.some((e) => e.kind === 'LOG' && mayStillRun.test(e.payload.message))).toBe(false);
  });

  it('cancelTask on a deployment whose cancellation Salesforce has not confirmed when the child is stopped warns that it may still run', async () => {
    // Canceling for the next 10,000 polls: the child waits for Canceled until its SIGTERM (kill grace 500 ms).
    sim.deployPlan({ components: 2, pollsToFinish: 500, cancelPolls: 10_000 });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 });
    const { deployId } = await deploymentPolled(id);
    await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id });
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'CANCELLED', error: { code: 'CANCELLED' } });
    expect(sim.getDeploy(deployId)).toMatchObject({ status: 'Canceling', done: false });
    const warnings = task.events.filter((e) => e.kind === 'LOG' && e.payload.level === 'warn').map((e) => e.payload.message);
    expect(warnings).toContain(
      `The deployment could not be cancelled in Salesforce and may still be running (its process was stopped before Salesforce confirmed the cancellation of ${deployId})`,
    );
  });

  /**
   * A DEPLOY whose child has polled its deployment once and waits 30 s for the next poll, while Salesforce ends
   * that deployment Failed (the simulator advances a deployment as it is polled: the test polls it to its end).
   */
  async function deploymentFailedUnseen(options: SubmitOptions = {}): Promise<{ id: string; deployId: string }> {
    sim.deployPlan({ components: 2, pollsToFinish: 3, componentFailures: [{ fullName: 'Alpha', lineNumber: 3, columnNumber: 1, problem: 'Unexpected token' }] });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 30_000 }, options);
    const deployId = await waitFor(
      async () => progressEvents(await getTask(id)).find((p) => p.details?.componentsTotal !== undefined)?.details.deployId as string | undefined,
      15_000,
      'the first poll',
    );
    const conn = salesforce();
    await waitFor(async () => (await conn.metadata.checkDeployStatus(deployId)).done === true, 5_000, 'the deployment to end');
    return { id, deployId };
  }

  /** The task ended as its deployment did: FAILED with DEPLOY_FAILED and the failures, after finding nothing to cancel. */
  function expectEndedAsDeploymentFailed(task: TaskView, deployId: string): void {
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'DEPLOY_FAILED' }, result: { deployId, status: 'Failed', success: false } });
    expect(task.result.componentFailures).toEqual([expect.objectContaining({ fullName: 'Alpha', line: 3, problem: 'Unexpected token' })]);
    const logs = task.events.filter((e) => e.kind === 'LOG').map((e) => e.payload.message);
    expect(logs).toContain(`Cancelling deployment ${deployId} in Salesforce`);
    expect(logs).toContain(`Deployment ${deployId} had already ended Failed: there was nothing to cancel`);
  }

  it('cancelTask on a running deployment that had already failed ends FAILED with DEPLOY_FAILED and the failures', async () => {
    const { id, deployId } = await deploymentFailedUnseen();
    await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id });
    // Not CANCELLED: the deployment had failed, and the task says how.
    expectEndedAsDeploymentFailed(await waitTask(id), deployId);
  });

  it('a deployment task that times out after its deployment had already failed ends FAILED with DEPLOY_FAILED, not TIMEOUT', async () => {
    const { id, deployId } = await deploymentFailedUnseen({ timeoutMs: 4000, maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expectEndedAsDeploymentFailed(task, deployId);
    // Final: not retried though an attempt remained.
    await sleep(500);
    expect((await getTask(id)).status).toBe('FAILED');
  });

  it('an access token that expires mid-deployment is refreshed by jsforce and the deployment succeeds', async () => {
    sim.deployPlan({ components: 2, pollsToFinish: 4 });
    const refreshesBefore = sim.tokenRefreshCount;
    const from = lastSeq();
    sim.expireSessionAfterPolls(2);
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task.status).toBe('SUCCEEDED');
    expect(task.attempts).toBe(1);
    // One refresh when the child connected, one when the session expired between polls.
    expect(sim.tokenRefreshCount - refreshesBefore).toBe(2);
    const polls = soapCalls(from).filter((r) => r.operation === 'checkDeployStatus');
    expect(polls.map((r) => [r.status, r.errorCode ?? null])).toEqual([
      [200, null],
      [200, null],
      [500, 'INVALID_SESSION_ID'],
      [200, null],
      [200, null],
    ]);
    const expired = polls[2]!;
    const refresh = sim.requests.find((r) => r.seq > expired.seq && r.path === '/services/oauth2/token')!;
    expect(refresh).toMatchObject({ status: 200, refreshToken: mainRefreshToken, clientId });
    expect(polls[3]!.seq).toBeGreaterThan(refresh.seq);
    expect(polls[3]!.accessToken).not.toBe(expired.accessToken);
  });

  it('a session Salesforce refuses right after issuing it fails the task with ORG_AUTH_FAILED at once, without refreshing again and again', async () => {
    sim.refuseApiSessions(); // a connected app without the api scope
    try {
      const refreshesBefore = sim.tokenRefreshCount;
      const from = lastSeq();
      const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { org: OTHER, maxAttempts: 2, timeoutMs: 20_000 });
      const task = await waitTask(id);
      expect(task.status).toBe('FAILED');
      expect(task.attempts).toBe(1); // not retried: credentials Salesforce refuses stay refused
      expect(task.error!.code).toBe('ORG_AUTH_FAILED');
      expect(task.error!.message).toMatch(/refused a session it had just issued/);
      // The child's connect, and one refresh when its session was refused; refused again, it gives up.
      expect(sim.tokenRefreshCount - refreshesBefore).toBe(2);
      expect(soapCalls(from).map((r) => [r.operation, r.errorCode ?? null])).toEqual([
        ['deploy', 'INVALID_SESSION_ID'],
        ['deploy', 'INVALID_SESSION_ID'],
      ]);
      expect((await gql(`{ org(alias: "${OTHER}") { status } }`)).org.status).toBe('AUTH_FAILED');
    } finally {
      sim.refuseApiSessions(false);
    }
  });

  it('a token endpoint failing when the session is refreshed mid-deployment is ORG_UNREACHABLE: the poll is tried again', async () => {
    sim.deployPlan({ components: 2, pollsToFinish: 12 });
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 1 });
    await deploymentPolled(id);
    sim.failNext('/services/oauth2/token', 500); // {"error":"unknown_error","error_description":"retry your request"}
    sim.expireSessionAfterPolls(0);
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    const warnings = task.events.filter((e) => e.kind === 'LOG' && /polling again in/.test(e.payload.message)).map((e) => e.payload.message);
    expect(warnings).toEqual([expect.stringMatching(/^Salesforce could not be reached while refreshing the session: retry your request; polling again in 100 ms/)]);
  });

  it('REQUEST_LIMIT_EXCEEDED on a SOAP call requeues the task with SF_API_LIMIT; the retry succeeds', async () => {
    sim.failNext('deploy', 'REQUEST_LIMIT_EXCEEDED');
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expectRetriedOnce(task, 'SF_API_LIMIT', 'SUCCEEDED');
    const deploys = soapCalls(from).filter((r) => r.operation === 'deploy');
    expect(deploys.map((r) => [r.status, r.errorCode ?? null])).toEqual([
      [500, 'REQUEST_LIMIT_EXCEEDED'],
      [200, null],
    ]);
    expect(deploys[0]!.injected).toBe('REQUEST_LIMIT_EXCEEDED');
  });

  it('a server error on a SOAP call is ORG_UNREACHABLE, retried, and final once no attempt is left', async () => {
    sim.failNext('deploy', 500, 2);
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expectRetriedOnce(task, 'ORG_UNREACHABLE', 'FAILED');
    expect(task.error!.code).toBe('ORG_UNREACHABLE');
    expect(task.error!.message).toMatch(/while starting the deployment: UNKNOWN_EXCEPTION: An unexpected error occurred/);
    expect(soapCalls(from).map((r) => [r.operation, r.status, r.injected ?? null])).toEqual([
      ['deploy', 500, 500],
      ['deploy', 500, 500],
    ]);
    // An unreachable org is not an authentication problem: the org keeps its status.
    expect((await gql(`{ org(alias: "${MAIN}") { status } }`)).org.status).toBe('CONNECTED');
  });

  it('a failed status poll is tried again within the attempt, after a growing wait', async () => {
    sim.deployPlan({ pollsToFinish: 3 });
    sim.failNext('checkDeployStatus', 500, 2);
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    const warnings = task.events.filter((e) => e.kind === 'LOG' && /polling again in/.test(e.payload.message)).map((e) => e.payload);
    expect(warnings).toEqual([
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/^Salesforce could not be reached while checking deployment \w+: .*; polling again in 100 ms \(5 more tries\)$/) }),
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/; polling again in 200 ms \(4 more tries\)$/) }),
    ]);
    const polls = soapCalls(from).filter((r) => r.operation === 'checkDeployStatus');
    expect(polls.slice(0, 3).map((r) => r.status)).toEqual([500, 500, 200]);
    expect(polls[2]!.at.getTime() - polls[1]!.at.getTime()).toBeGreaterThanOrEqual(190); // the second wait, doubled
  });

  it('Postgres failing to read the artifact as a run starts is retried (WORKER_ERROR), not a final INVALID_PACKAGE', async () => {
    // The worker reads the task's artifact record before it hands the run to a child. A database that did not
    // answer (a failover, a full pool) used to fail the task for good, with Prisma's own message as its error.
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 1500, runAt: new Date(Date.now() + 1000) });
    // The table is away while the first attempt starts (a real Postgres error), and back for the retry.
    await api.prisma.$executeRawUnsafe('ALTER TABLE "Artifact" RENAME TO "ArtifactAway"');
    try {
      await waitFor(async () => statusEvents(await getTask(id)).length >= 3, 15_000, 'the first attempt to fail');
    } finally {
      await api.prisma.$executeRawUnsafe('ALTER TABLE "ArtifactAway" RENAME TO "Artifact"');
    }
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2, error: null });
    expect(statusEvents(task).map((s) => s.status)).toEqual(['SCHEDULED', 'RUNNING', 'QUEUED', 'RUNNING', 'SUCCEEDED']);
    expect(statusEvents(task)[2]).toEqual({ status: 'QUEUED', after: 'WORKER_ERROR', message: "The worker could not read the task's artifact", retryInMs: 1500 });
    expect(worker.logLines.some((line) => line.includes("reading the task's artifact failed") && line.includes(rawId(id)))).toBe(true);
  });

  it('an artifact removed before its deployment starts fails the task with ARTIFACT_NOT_FOUND, not retried', async () => {
    const uploaded = await upload(samplePackage(['Gone']), 'gone.zip');
    const id = await submit('DEPLOY', { artifactId: uploaded.artifact.id, testLevel: 'NoTestRun' }, { maxAttempts: 2, runAt: new Date(Date.now() + 1000) });
    await api.prisma.artifact.delete({ where: { id: rawId(uploaded.artifact.id) } }); // outside Switchyard
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'ARTIFACT_NOT_FOUND' } });
  });

  it('a retry follows the deployment its first attempt started instead of starting another', async () => {
    sim.deployPlan({ pollsToFinish: 3 });
    sim.failNext('checkDeployStatus', 500, failedPollsEndingAnAttempt);
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expectRetriedOnce(task, 'ORG_UNREACHABLE', 'SUCCEEDED');
    // One deployment: the first attempt started it and failed polling it; the second only polled it.
    const calls = soapCalls(from).map((r) => [r.operation, r.status]);
    expect(calls.slice(0, 1 + failedPollsEndingAnAttempt)).toEqual([['deploy', 200], ...Array(failedPollsEndingAnAttempt).fill(['checkDeployStatus', 500])]);
    expect(calls.length).toBeGreaterThan(1 + failedPollsEndingAnAttempt);
    expect(calls.slice(1 + failedPollsEndingAnAttempt).every(([operation, status]) => operation === 'checkDeployStatus' && status === 200)).toBe(true);
    const { deployId } = task.result;
    expect(sim.getDeploy(deployId)).toMatchObject({ done: true, success: true });
    // The first attempt recorded the deploy id before its first poll, which is what the retry went by.
    expect(progressEvents(task)).toContainEqual({ percent: 5, phase: 'started', details: { deployId } });
    expect(task.events.filter((e) => e.kind === 'LOG').map((e) => e.payload.message)).toContain(`Following deployment ${deployId}, started by an earlier attempt`);
  });

  it('a worker shut down mid-deployment leaves it running in Salesforce; the retry on the next worker follows it', async () => {
    sim.deployPlan({ pollsToFinish: 6 });
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const deployId = await restartWorkerOnceDeploying(id);
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(task.result.deployId).toBe(deployId);
    expect(statusEvents(task)[2]).toMatchObject({ status: 'QUEUED', after: 'WORKER_SHUTDOWN' });
    const operations = soapCalls(from).map((r) => r.operation);
    expect(operations.filter((o) => o === 'deploy')).toHaveLength(1);
    expect(operations).not.toContain('cancelDeploy');
    expect(sim.getDeploy(deployId)).toMatchObject({ done: true, success: true });
    const logs = task.events.filter((e) => e.kind === 'LOG').map((e) => e.payload.message);
    expect(logs).toContain(`Stopped following deployment ${deployId}: the worker is shutting down, and a retry follows it`);
    expect(logs).toContain(`Following deployment ${deployId}, started by an earlier attempt`);
    expect(logs.some((m) => mayStillRun.test(m))).toBe(false); // left running on purpose, for the retry
  });

  it('a worker shut down on the last attempt cancels the deployment: no retry would follow it', async () => {
    sim.deployPlan({ pollsToFinish: 6 });
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 1 });
    const deployId = await restartWorkerOnceDeploying(id);
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'WORKER_SHUTDOWN' } });
    expect(soapCalls(from).filter((r) => r.operation === 'cancelDeploy').map((r) => r.status)).toEqual([200]);
    expect(sim.getDeploy(deployId)!.canceled).toBe(true);
  });

  it('a deployment task that times out cancels its deployment in Salesforce, though attempts remain', async () => {
    sim.deployPlan({ pollsToFinish: 40 });
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, timeoutMs: 1500 });
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'TIMEOUT' } });
    const { deployId } = progressEvents(task).find((p) => p.phase === 'started')!.details;
    expect(soapCalls(from).filter((r) => r.operation === 'cancelDeploy').map((r) => r.status)).toEqual([200]);
    expect(sim.getDeploy(deployId)!.canceled).toBe(true);
    expect(task.events.some((e) => e.kind === 'LOG' && mayStillRun.test(e.payload.message))).toBe(false);
  });

  it('a deployment task that times out before Salesforce confirms the cancellation ends TIMEOUT, warning that it may still run', async () => {
    sim.deployPlan({ pollsToFinish: 500, cancelPolls: 10_000 }); // Canceling until long after the child's SIGTERM
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, timeoutMs: 1500 });
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'FAILED', attempts: 1, error: { code: 'TIMEOUT' } });
    const { deployId } = progressEvents(task).find((p) => p.phase === 'started')!.details;
    expect(sim.getDeploy(deployId)).toMatchObject({ status: 'Canceling', done: false });
    const warnings = task.events.filter((e) => e.kind === 'LOG' && e.payload.level === 'warn').map((e) => e.payload.message);
    expect(warnings).toContain(
      `The deployment could not be cancelled in Salesforce and may still be running (its process was stopped before Salesforce confirmed the cancellation of ${deployId})`,
    );
  });

  it('cancelTask on a deployment task waiting for its retry cancels the deployment its first attempt started', async () => {
    const { id, deployId, from } = await deploymentWaitingForRetry(artifactId, 40);

    const cancelled = await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { status cancelRequestedAt } } } }`, { id });
    // Not over yet: the task runs once more (now, not after its 60 s backoff), only to cancel the deployment.
    expect(cancelled.cancelTask).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'QUEUED', cancelRequestedAt: expect.any(String) } });
    const task = await waitTask(id, FINAL_STATUSES, 20_000);
    expectDeploymentCancelledOnce(task, from, deployId);
    const logs = task.events.filter((e) => e.kind === 'LOG').map((e) => e.payload.message as string);
    expect(logs.some((m) => m.endsWith(`deployment ${deployId}, which an earlier attempt started, is cancelled in Salesforce first`))).toBe(true);
    expect(logs).toContain(`Cancelling deployment ${deployId} in Salesforce`);
  });

  it('cancelTask right after a retry is claimed still cancels the deployment its first attempt started', async () => {
    // The cancel finds the retry RUNNING while its process is still starting. That run used to be dropped before
    // its request, and the task ended CANCELLED with the deployment still running in Salesforce.
    await replaceWorker({ keepSpareChild: false }); // the retry's process starts from scratch: tens of ms
    try {
      const { id, deployId, from } = await deploymentWaitingForRetry(artifactId, 40);
      const row = await api.prisma.task.findUniqueOrThrow({ where: { id: rawId(id) } });
      await api.queues.promote(row.queue, row.jobId!);
      const deadline = Date.now() + 10_000;
      while ((await api.prisma.task.findUniqueOrThrow({ where: { id: rawId(id) } })).attempts < 2) {
        expect(Date.now(), 'the retry to be claimed').toBeLessThan(deadline);
        await sleep(1);
      }
      const cancelled = await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { status } } } }`, { id });
      expect(cancelled.cancelTask).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'RUNNING' } });
      expectDeploymentCancelledOnce(await waitTask(id, FINAL_STATUSES, 20_000), from, deployId);
    } finally {
      await replaceWorker();
    }
  });

  it('cancelTask on a deployment task waiting for its retry reports a deployment that had already succeeded', async () => {
    const { id, deployId, from } = await deploymentWaitingForRetry(artifactId, 1);
    // Salesforce finishes the deployment meanwhile (the simulator advances a deployment as it is polled).
    expect(await salesforce().metadata.checkDeployStatus(deployId)).toMatchObject({ done: true, status: 'Succeeded' });

    await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id });
    const task = await waitTask(id, FINAL_STATUSES, 20_000);
    // Not CANCELLED: the package was deployed, and the task says so.
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2, result: { deployId, status: 'Succeeded', success: true } });
    expect(soapCalls(from).filter((r) => r.operation === 'cancelDeploy').map((r) => r.errorCode)).toEqual([expect.stringMatching(/INVALID_ID_FIELD|DEPLOYMENT_ALREADY_COMPLETED/)]);
    expect(task.events.filter((e) => e.kind === 'LOG').map((e) => e.payload.message)).toContain(`Deployment ${deployId} had already ended Succeeded: there was nothing to cancel`);
  });

  it('cancelTask on a deployment task waiting for its retry, with no deployment started, cancels it at once', async () => {
    sim.failNext('deploy', 500);
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 60_000 });
    await waitForRetry(id);
    const cancelled = await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { status } } } }`, { id });
    expect(cancelled.cancelTask).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELLED' } });
    expect(soapCalls(from).map((r) => r.operation)).toEqual(['deploy']);
  });

  it('a retried QUICK_DEPLOY follows its deployment: a validation can be quick-deployed only once', async () => {
    sim.deployPlan({ pollsToFinish: 1 });
    const validation = await waitTask(await submit('VALIDATE', { artifactId, testLevel: 'RunSpecifiedTests', runTests: ['FooTest'], pollIntervalMs: 100 }));
    expect(validation.status).toBe('SUCCEEDED');
    sim.deployPlan({ pollsToFinish: 2 });
    sim.failNext('checkDeployStatus', 500, failedPollsEndingAnAttempt);
    const from = lastSeq();
    const id = await submit('QUICK_DEPLOY', { validationTaskId: validation.id, pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const task = await waitTask(id);
    expect(task.error).toBeNull();
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(soapCalls(from).filter((r) => r.operation === 'deployRecentValidation')).toHaveLength(1);
    expect(sim.getDeploy(validation.result.deployId)!.quickDeployedAs).toBe(task.result.deployId);
    expect(task.result).toMatchObject({ validationId: validation.result.deployId, success: true });
  });

  it('retryTask starts a new run: its retries never follow a deployment of the run before', async () => {
    // Run 1: attempt 1 starts deployment A and fails polling it; attempt 2 follows A and fails too.
    sim.deployPlan({ pollsToFinish: 2 });
    sim.failNext('checkDeployStatus', 500, 2 * failedPollsEndingAnAttempt);
    const from = lastSeq();
    const id = await submit('DEPLOY', { artifactId, testLevel: 'NoTestRun', pollIntervalMs: 100 }, { maxAttempts: 2, retryBackoffMs: 100 });
    const failed = await waitTask(id);
    expect(failed).toMatchObject({ status: 'FAILED', attempts: 2, error: { code: 'ORG_UNREACHABLE' } });
    const first = progressEvents(failed).find((p) => p.details?.deployId)!.details.deployId as string;

    // Run 2 (retryTask): attempt 1 cannot start a deployment; attempt 2 starts B rather than follow A.
    sim.failNext('deploy', 500);
    sim.deployPlan({ pollsToFinish: 2 });
    const retried = await gql(`mutation($id: ID!) { retryTask(id: $id) { __typename } }`, { id });
    expect(retried.retryTask.__typename).toBe('RetryTaskSuccess');
    const task = await waitTask(id);
    expect(task).toMatchObject({ status: 'SUCCEEDED', attempts: 2 });
    expect(task.result.deployId).not.toBe(first);
    expect(soapCalls(from).filter((r) => r.operation === 'deploy').map((r) => r.status)).toEqual([200, 500, 200]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Credential canary
// ---------------------------------------------------------------------------------------------------------

function leaks(where: string, haystack: string, values: string[]): string[] {
  const found: string[] = [];
  values.forEach((value, index) => {
    for (const form of encodings(value, { uriComponent: true })) if (haystack.includes(form)) found.push(`${where}: secret #${index} (${form === value ? 'plain' : form})`);
  });
  return found;
}

describe('credential canary', { timeout: 60_000 }, () => {
  it('no refresh token, client secret or access token appears in responses, logs, task data or the database', async () => {
    // Every task with its whole event log and result, through GraphQL.
    const all = await gql(`{ tasks(first: 100) { totalCount edges { node { ${TASK_FIELDS} params } } } }`);
    expect(all.tasks.totalCount).toBeGreaterThanOrEqual(15);
    const taskData = JSON.stringify(all.tasks);

    // The children redeemed the refresh tokens themselves and presented the access tokens they got.
    const accessTokens = [...new Set(sim.requests.map((r) => r.accessToken).filter((t): t is string => !!t))];
    expect(accessTokens.length).toBeGreaterThanOrEqual(5);
    const grants = sim.requests.filter((r) => r.path === '/services/oauth2/token');
    expect(grants.length).toBeGreaterThanOrEqual(10);
    for (const grant of grants) {
      expect(grant.clientId).toBe(clientId);
      expect(grant.sentClientSecret).toBe(true);
      expect([mainRefreshToken, otherRefreshToken, rotatedRefreshToken]).toContain(grant.refreshToken);
    }
    // Every answered SOAP and REST call presented an access token minted by one of those grants (each token is
    // first used after a successful grant, and there are no more tokens than grants).
    const answered = sim.requests.filter((r) => (r.operation || r.path.startsWith('/services/data/v') || r.path.startsWith('/id/')) && r.status === 200);
    expect(answered.filter((r) => r.operation).length).toBeGreaterThan(20);
    for (const call of answered) expect(call.accessToken, `${call.path} ${call.operation ?? ''}`).toBeTruthy();
    const okGrants = grants.filter((g) => g.status === 200);
    expect(accessTokens.length).toBeLessThanOrEqual(okGrants.length);
    for (const accessToken of accessTokens) {
      const firstUse = sim.requests.find((r) => r.accessToken === accessToken)!;
      expect(okGrants.some((g) => g.seq < firstUse.seq)).toBe(true);
    }
    expect(sim.requests.filter((r) => r.path !== '/services/oauth2/token' && r.refreshToken)).toEqual([]);

    const url = new URL(testDatabaseUrl);
    const { stdout: dump } = await promisify(execFile)(
      'pg_dump',
      ['--data-only', '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username) || 'postgres', '-n', api.schema, url.pathname.slice(1)],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    // The dump holds the tasks and events this file produced.
    expect(dump).toContain(sim.org.Id);
    expect(dump).toContain('RETRIEVE_FAILED');

    const found = [
      ...leaks('GraphQL responses', responses.join('\n'), [...secrets, ...accessTokens]),
      ...leaks('task data', taskData, [...secrets, ...accessTokens]),
      ...leaks('API log', api.logLines.join('\n'), [...secrets, ...accessTokens]),
      ...leaks('worker log', [...retiredWorkerLogLines, ...worker.logLines].join('\n'), [...secrets, ...accessTokens]),
      ...leaks('pg_dump', dump, [...secrets, ...accessTokens]),
    ];
    expect(found).toEqual([]);
    expect(responses.length).toBeGreaterThan(50);
    expect(worker.logLines.length).toBeGreaterThan(0);
  });
});
