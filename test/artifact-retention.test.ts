// Artifact retention: a worker deletes artifacts created and last used more than SWITCHYARD_ARTIFACT_RETENTION_DAYS
// ago that nothing may still use (records and files), and keeps those a waiting task, a schedule or a webhook
// rule names. Real Postgres, Redis, artifact directory and worker; an artifact is made "old" by backdating its
// record and its file's modification time.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { storeArtifactBytes } from '../src/artifacts/artifact-files.js';
import { ArtifactService } from '../src/domain/artifacts/artifact-service.js';
import { rawId } from '../src/domain/ids.js';
import { errorFields, postZip, startTestApi, type TestApi } from './support/harness.js';
import { samplePackage } from './support/salesforce-package.js';
import { startTestWorker, waitFor, type TestWorker } from './support/worker-harness.js';

let api: TestApi;
let worker: TestWorker;
let token: string;

const DAY_MS = 86_400_000;
const RETENTION_DAYS = 30;

const UPLOAD = `mutation($file: File!) { uploadArtifact(file: $file) { __typename
  ... on UploadArtifactSuccess { artifact { id sha256 downloadPath } } ${errorFields} } }`;

interface Uploaded {
  id: string;
  sha256: string;
  downloadPath: string;
}

async function gql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await api.gql(query, variables, token);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  return res.body.data;
}

async function upload(bytes: Uint8Array, fileName: string): Promise<Uploaded> {
  const body = JSON.parse((await postZip(api.url, token, UPLOAD, bytes, fileName)).text);
  expect(body.data.uploadArtifact.__typename, JSON.stringify(body)).toBe('UploadArtifactSuccess');
  return body.data.uploadArtifact.artifact;
}

const uuidOf = (globalId: string) => rawId(globalId, 'Artifact')!;
const fileOf = (artifact: Uploaded) => api.services.artifacts.pathOf({ sha256: artifact.sha256 } as never);

const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

/** Makes an artifact `days` old: its record's creation and last use, and its file's last write. */
async function age(artifact: Uploaded, days: number, file = true): Promise<void> {
  const then = daysAgo(days);
  await api.prisma.artifact.update({ where: { id: uuidOf(artifact.id) }, data: { createdAt: then, lastUsedAt: then } });
  if (file) utimesSync(fileOf(artifact), then, then);
}

const SUBMIT = `mutation($input: SubmitTaskInput!) { submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id status } } ${errorFields} } }`;

async function download(artifact: Uploaded): Promise<number> {
  const response = await fetch(`${api.url}${artifact.downloadPath}`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  api = await startTestApi('artifact-retention');
  token = await api.token('OWNER');
  const org = await api.gql(
    `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename } }`,
    { input: { alias: 'keep', kind: 'SANDBOX', credentials: { instanceUrl: 'https://keep.sandbox.my.salesforce.com', refreshToken: '5Aep861keepToken' } } },
    token,
  );
  expect(org.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
  // Only the BATCH queue: the tasks below (on NORMAL) stay waiting, as tasks a busy worker has yet to run would.
  // Its own prune runs at start (sweeping the empty directory) and otherwise only when a test asks.
  worker = await startTestWorker(api, { queues: ['BATCH'], artifactRetentionDays: RETENTION_DAYS, reconcileIntervalMs: 3_600_000 });
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
});

describe('artifact retention', () => {
  it('deletes expired artifacts nothing uses, and keeps those a waiting task, a schedule or a webhook rule names', async () => {
    const expired = await upload(samplePackage(['Expired']), 'expired.zip');
    const recent = await upload(samplePackage(['Recent']), 'recent.zip');
    const forTask = await upload(samplePackage(['ForTask']), 'task.zip');
    const forSchedule = await upload(samplePackage(['ForSchedule']), 'schedule.zip');
    const forRule = await upload(samplePackage(['ForRule']), 'rule.zip');
    const finishedTask = await upload(samplePackage(['Finished']), 'finished.zip');

    const deploy = (artifact: Uploaded) => ({ artifactId: artifact.id, testLevel: 'NoTestRun' });
    const waiting = await gql(SUBMIT, {
      input: { type: 'VALIDATE', org: 'keep', queue: 'NORMAL', params: deploy(forTask) },
    });
    expect(waiting.submitTask.task.status).toBe('QUEUED');
    const schedule = await gql(`mutation($input: ScheduleTaskInput!) { scheduleTask(input: $input) { __typename ${errorFields} } }`, {
      input: { type: 'VALIDATE', org: 'keep', cron: '0 3 * * *', params: deploy(forSchedule) },
    });
    expect(schedule.scheduleTask.__typename).toBe('ScheduleTaskSuccess');
    const source = await gql(`mutation { createWebhookSource(kind: GITHUB, name: "retention") { __typename ... on CreateWebhookSourceSuccess { created { source { id } } } } }`);
    const rule = await gql(`mutation($input: WebhookRuleInput!) { createWebhookRule(input: $input) { __typename ${errorFields} } }`, {
      input: { name: 'validate pushes', sourceId: source.createWebhookSource.created.source.id, event: 'push', taskType: 'VALIDATE', org: 'keep', params: deploy(forRule) },
    });
    expect(rule.createWebhookRule.__typename).toBe('CreateWebhookRuleSuccess');
    // A task that finished (cancelled here) keeps nothing alive.
    const finished = await gql(SUBMIT, {
      input: { type: 'VALIDATE', org: 'keep', queue: 'NORMAL', params: deploy(finishedTask) },
    });
    const finishedId = finished.submitTask.task.id as string;
    await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: finishedId });

    for (const artifact of [expired, forTask, forSchedule, forRule, finishedTask]) await age(artifact, RETENTION_DAYS + 1);
    await age(recent, RETENTION_DAYS - 1);

    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 2, files: 2, failures: 0 });

    const listed = await gql(`{ artifacts(first: 20) { totalCount edges { node { id } } } }`);
    expect(listed.artifacts.edges.map((e: any) => e.node.id).sort()).toEqual([recent, forTask, forSchedule, forRule].map((a) => a.id).sort());
    for (const gone of [expired, finishedTask]) {
      expect(await download(gone)).toBe(404);
      expect(existsSync(fileOf(gone))).toBe(false);
    }
    for (const kept of [recent, forTask, forSchedule, forRule]) {
      expect(await download(kept)).toBe(200);
      expect(existsSync(fileOf(kept))).toBe(true);
    }
    // Nothing more to do on the next pass.
    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 0, files: 0, failures: 0 });

    // Retrying the finished task is refused plainly: its artifact is gone.
    const retried = await gql(`mutation($id: ID!) { retryTask(id: $id) { __typename ${errorFields} } }`, { id: finishedId });
    expect(retried.retryTask).toMatchObject({ __typename: 'NotFoundError', code: 'ARTIFACT_NOT_FOUND' });
    const still = await gql(`query($id: ID!) { task(id: $id) { status } }`, { id: finishedId });
    expect(still.task.status).toBe('CANCELLED');
  });

  it('keeps the file while another record of the same bytes remains, and a file written since the cutoff', async () => {
    await worker.host.pruneArtifacts(); // what the test before left to prune (its waiting task was cancelled)
    const bytes = samplePackage(['Shared']);
    const older = await upload(bytes, 'older.zip');
    await age(older, RETENTION_DAYS + 5);
    const newer = await upload(bytes, 'newer.zip'); // same bytes, same file: the upload wrote it again just now
    expect(newer.sha256).toBe(older.sha256);
    expect(statSync(fileOf(newer)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 1, files: 0, failures: 0 });
    expect(await download(newer)).toBe(200);

    // A record past the retention whose file was (re)written recently: the record goes, the file stays, so an
    // upload of those bytes recording itself at that moment keeps its file.
    const rewritten = await upload(samplePackage(['Rewritten']), 'rewritten.zip');
    await age(rewritten, RETENTION_DAYS + 5, false);
    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 1, files: 0, failures: 0 });
    expect(existsSync(fileOf(rewritten))).toBe(true);
  });

  it('counts retention from the last time a task, schedule or rule named the artifact', async () => {
    const reused = await upload(samplePackage(['Reused']), 'reused.zip');
    await age(reused, RETENTION_DAYS + 10);
    // A task submitted now names it (then is cancelled: finished tasks keep nothing alive by themselves).
    const submitted = await gql(SUBMIT, { input: { type: 'DEPLOY', org: 'keep', queue: 'NORMAL', params: { artifactId: reused.id, testLevel: 'NoTestRun' } } });
    await gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: submitted.submitTask.task.id });
    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 0, files: 0, failures: 0 });
    expect(await download(reused)).toBe(200);
    const shown = await gql(`query($id: ID!) { node(id: $id) { ... on Artifact { createdAt lastUsedAt } } }`, { id: reused.id });
    expect(Date.parse(shown.node.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(shown.node.createdAt)).toBeLessThan(Date.now() - RETENTION_DAYS * DAY_MS);
    // That use, too, is past the retention once enough days go by.
    await api.prisma.artifact.update({ where: { id: uuidOf(reused.id) }, data: { lastUsedAt: daysAgo(RETENTION_DAYS + 1) } });
    expect(await worker.host.pruneArtifacts()).toEqual({ artifacts: 1, files: 1, failures: 0 });
    expect(await download(reused)).toBe(404);
  });

  it('refuses a webhook rule or a task naming an artifact that does not exist', async () => {
    const missing = Buffer.from('Artifact:00000000-0000-4000-8000-000000000000').toString('base64');
    const source = await gql(`mutation { createWebhookSource(kind: GITLAB, name: "missing") { __typename ... on CreateWebhookSourceSuccess { created { source { id } } } } }`);
    const rule = await gql(`mutation($input: WebhookRuleInput!) { createWebhookRule(input: $input) { __typename ${errorFields} } }`, {
      input: { name: 'deploy', sourceId: source.createWebhookSource.created.source.id, taskType: 'DEPLOY', org: 'keep', params: { artifactId: missing } },
    });
    expect(rule.createWebhookRule).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: ['params', 'artifactId'] }] });
    const task = await gql(SUBMIT, { input: { type: 'VALIDATE', org: 'keep', params: { artifactId: missing } } });
    expect(task.submitTask).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: ['params', 'artifactId'] }] });
  });

  it('sweeps files no record names, and leftovers of interrupted writes, once they are past the retention', async () => {
    // A store of its own, on the same database: only what this test puts there.
    const dir = mkdtempSync(path.join(tmpdir(), 'sy-artifact-sweep-'));
    const store = new ArtifactService(api.prisma, dir, 1024 * 1024);
    try {
      const orphan = (digit: string) => {
        const digest = digit.repeat(64);
        mkdirSync(path.join(dir, digest.slice(0, 2)), { recursive: true });
        const file = path.join(dir, digest.slice(0, 2), `${digest}.zip`);
        writeFileSync(file, 'PK\x05\x06');
        return file;
      };
      const oldOrphan = orphan('a');
      const newOrphan = orphan('b');
      const newOrphanC = orphan('c');
      const temporary = `${newOrphanC}.0123abcd.tmp`;
      writeFileSync(temporary, 'partial');
      // Interrupted writes are abandoned after an hour, whatever the retention; a write under way is not.
      const abandoned = `${newOrphanC}.4567cdef.tmp`;
      const underWay = `${newOrphanC}.89abcdef.tmp`;
      writeFileSync(abandoned, 'partial');
      writeFileSync(underWay, 'partial');
      utimesSync(abandoned, new Date(Date.now() - 2 * 3_600_000), new Date(Date.now() - 2 * 3_600_000));
      utimesSync(underWay, new Date(Date.now() - 10 * 60_000), new Date(Date.now() - 10 * 60_000));
      const recorded = await store.upload(cliPrincipal, 'recorded.zip', samplePackage(['Recorded']));
      const recordedFile = store.pathOf(recorded);
      for (const file of [oldOrphan, temporary, recordedFile]) utimesSync(file, daysAgo(RETENTION_DAYS + 1), daysAgo(RETENTION_DAYS + 1));

      expect(await store.pruneFiles(daysAgo(RETENTION_DAYS))).toEqual({ files: 3, failures: 0 });
      expect([oldOrphan, newOrphan, newOrphanC, temporary, abandoned, underWay, recordedFile].map((file) => existsSync(file))).toEqual([false, true, true, false, false, true, true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves no partial file behind when a write fails', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sy-artifact-write-'));
    try {
      const bytes = samplePackage(['Failing']);
      const digest = createHash('sha256').update(bytes).digest('hex');
      // A directory where the file belongs: the rename into place fails (EISDIR), after the bytes were written.
      mkdirSync(path.join(dir, digest.slice(0, 2), `${digest}.zip`), { recursive: true });
      await expect(storeArtifactBytes(dir, bytes)).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
      expect(readdirSync(path.join(dir, digest.slice(0, 2)))).toEqual([`${digest}.zip`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 410 before sending anything when the file is missing or not the recorded size', async () => {
    const damaged = await upload(samplePackage(['Damaged']), 'damaged.zip');
    const file = fileOf(damaged);
    const original = readFileSync(file);
    writeFileSync(file, original.subarray(0, 10)); // truncated
    try {
      const response = await fetch(`${api.url}${damaged.downloadPath}`, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(410);
      expect(await response.json()).toEqual({ error: { code: 'ARTIFACT_FILE_MISSING', message: 'The artifact is recorded but its file in the artifact store is damaged (not the recorded size)' } });
      rmSync(file);
      const gone = await fetch(`${api.url}${damaged.downloadPath}`, { headers: { authorization: `Bearer ${token}` } });
      expect(gone.status).toBe(410);
      expect(((await gone.json()) as any).error.message).toBe('The artifact is recorded but its file is missing from the artifact store');
    } finally {
      writeFileSync(file, original);
    }
    expect(await download(damaged)).toBe(200);
  });

  it('keeps everything when retention is 0, but not what interrupted writes left', async () => {
    const kept = await upload(samplePackage(['Forever']), 'forever.zip');
    await age(kept, 10_000);
    const leftover = `${fileOf(kept)}.feedbeef.tmp`;
    writeFileSync(leftover, 'partial');
    utimesSync(leftover, new Date(Date.now() - 2 * 3_600_000), new Date(Date.now() - 2 * 3_600_000));
    // Its start-up pass sweeps (retention 0 or not, the first sweep is due at start).
    const keeper = await startTestWorker(api, { queues: ['BATCH'], artifactRetentionDays: 0 });
    try {
      await waitFor(async () => !existsSync(leftover) || null, 5000, 'the leftover to be swept');
      expect(await keeper.host.pruneArtifacts()).toBeNull();
    } finally {
      await keeper.close();
    }
    expect(await download(kept)).toBe(200);
  });
});
