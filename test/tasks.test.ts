// Tasks through the GraphQL API against real Postgres, Redis and BullMQ. No workers run here: a task stays
// QUEUED/SCHEDULED until it is cancelled, so the queues' contents are fully determined by these tests.
import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { controlChannel } from '../src/events/task-event-bus.js';
import type { Prisma } from '../src/db/prisma.js';
import type { TaskQueue } from '../src/generated/prisma/enums.js';
import { concurrently, errorFields, startTestApi, type TestApi } from './support/harness.js';

const queueNamesList = ['CRITICAL', 'NORMAL', 'BATCH'] as const;

const TASK_FIELDS = `
  id type status queue priority params error { code message } attempts maxAttempts source requestedBy
  runAt orgAlias org { alias } createdAt startedAt finishedAt cancelRequestedAt progress phase`;
const ERRORS = `${errorFields} ... on InvalidStateError { currentStatus }`;
const SUBMIT = `mutation($input: SubmitTaskInput!) {
  submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { ${TASK_FIELDS} } } ${errorFields} }
}`;
const CANCEL = `mutation($id: ID!) {
  cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { ${TASK_FIELDS} } } ${ERRORS} }
}`;
const RETRY = `mutation($id: ID!) {
  retryTask(id: $id) { __typename ... on RetryTaskSuccess { task { ${TASK_FIELDS} } } ${ERRORS} }
}`;
const TASK = `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;
const SCHEDULE = `mutation($input: ScheduleTaskInput!) {
  scheduleTask(input: $input) { __typename ... on ScheduleTaskSuccess { schedule { id cron timezone nextRunAt } } ${errorFields} }
}`;
const REMOVE_SCHEDULE = `mutation($id: ID!) {
  removeSchedule(id: $id) { __typename ... on RemoveScheduleSuccess { removed { id } } ${errorFields} }
}`;
const EVENTS = `query($id: ID!, $first: Int, $after: String) {
  task(id: $id) {
    events(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { seq kind payload createdAt } }
    }
  }
}`;
const LIST = `query($filter: TaskFilter, $first: Int, $after: String, $last: Int, $before: String) {
  tasks(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id type status queue source orgAlias } }
  }
}`;

interface TaskView {
  id: string;
  type: string;
  status: string;
  queue: TaskQueue;
  priority: number;
  params: Record<string, unknown>;
  error: { code: string; message: string } | null;
  attempts: number;
  maxAttempts: number;
  source: string;
  requestedBy: string;
  runAt: string | null;
  orgAlias: string;
  org: { alias: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  cancelRequestedAt: string | null;
  progress: number;
  phase: string | null;
}

interface MutationResult {
  __typename: string;
  task?: TaskView;
  code?: string;
  message?: string;
  currentStatus?: string;
  fieldErrors?: Array<{ path: string[]; message: string }>;
}

const credentials = { instanceUrl: 'https://acme--uat.sandbox.my.salesforce.com', refreshToken: '5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJJ' };

/** The UUID inside a Task global id (also checks that it is one). */
function rawId(globalId: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString('utf8');
  expect(decoded).toMatch(/^Task:[0-9a-f-]{36}$/);
  return decoded.slice('Task:'.length);
}

/** An empty zip archive (its end-of-central-directory record alone): enough for an upload to be accepted. */
const zipBytes = Buffer.from('504b0506' + '00'.repeat(18), 'hex');

/**
 * Uploads one artifact per name through `target`'s own services (each test API has its own database, and
 * DEPLOY/VALIDATE refuse an artifactId that names no artifact there); answers name -> the artifact's raw UUID.
 */
async function uploadArtifacts<K extends string>(target: TestApi, names: readonly K[]): Promise<Record<K, string>> {
  const artifacts = await Promise.all(names.map((name) => target.services.artifacts.upload(cliPrincipal, `${name}.zip`, zipBytes)));
  return Object.fromEntries(names.map((name, i) => [name, artifacts[i]!.id])) as Record<K, string>;
}

/**
 * A VALIDATE task that has finished on org `alias` (workers do not run here, so it is written straight to the
 * database), with the columns a real run leaves; `overrides` makes it something a QUICK_DEPLOY must refuse.
 */
async function succeededValidation(
  target: TestApi,
  alias: string,
  result: Prisma.InputJsonValue | undefined,
  overrides: Partial<Prisma.TaskUncheckedCreateInput> = {},
) {
  const org = await target.prisma.org.findUniqueOrThrow({ where: { alias } });
  const { validated } = await uploadArtifacts(target, ['validated']);
  const finishedAt = new Date();
  return target.prisma.task.create({
    data: {
      type: 'VALIDATE',
      status: 'SUCCEEDED',
      queue: 'NORMAL',
      priority: 50,
      input: { artifactId: validated, testLevel: 'RunLocalTests', runTests: [], rollbackOnError: true, ignoreWarnings: false, singlePackage: true, pollIntervalMs: 2000 },
      ...(result === undefined ? {} : { result }),
      progress: 100,
      attempts: 1,
      maxAttempts: 3,
      source: 'API',
      requestedBy: 'member-user/member-1',
      orgId: org.id,
      orgAlias: org.alias,
      startedAt: new Date(finishedAt.getTime() - 60_000),
      finishedAt,
      ...overrides,
    },
  });
}

/** A small client over one TestApi, with the tokens it needs. */
class Client {
  constructor(
    readonly api: TestApi,
    readonly member: string,
    readonly owner: string,
  ) {}

  static async start(api: TestApi, orgs: string[]): Promise<Client> {
    const client = new Client(api, await api.token('MEMBER'), await api.token('OWNER'));
    for (const alias of orgs) await client.registerOrg(alias);
    return client;
  }

  async registerOrg(alias: string): Promise<string> {
    const res = await this.api.gql(
      `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename ... on RegisterOrgSuccess { org { id alias } } ${errorFields} } }`,
      { input: { alias, kind: 'SANDBOX', credentials } },
      this.owner,
    );
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
    return res.body.data.registerOrg.org.id as string;
  }

  async mutate(query: string, variables: Record<string, unknown>, field: string, token = this.member): Promise<MutationResult> {
    const res = await this.api.gql(query, variables, token);
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    return res.body.data[field] as MutationResult;
  }

  submitRaw(input: Record<string, unknown>, token = this.member): Promise<MutationResult> {
    return this.mutate(SUBMIT, { input }, 'submitTask', token);
  }

  /** Submits and expects success. */
  async submit(input: Record<string, unknown>): Promise<TaskView> {
    const result = await this.submitRaw(input);
    expect(result, JSON.stringify(result)).toMatchObject({ __typename: 'SubmitTaskSuccess' });
    return result.task!;
  }

  cancel(id: string, token = this.member): Promise<MutationResult> {
    return this.mutate(CANCEL, { id }, 'cancelTask', token);
  }

  retry(id: string, token = this.member): Promise<MutationResult> {
    return this.mutate(RETRY, { id }, 'retryTask', token);
  }

  async task(id: string): Promise<TaskView | null> {
    const res = await this.api.gql(TASK, { id }, this.member);
    expect(res.body.errors).toBeUndefined();
    return res.body.data.task as TaskView | null;
  }

  async events(id: string): Promise<Array<{ seq: number; kind: string; payload: Record<string, unknown> }>> {
    const res = await this.api.gql(EVENTS, { id, first: 500 }, this.member);
    expect(res.body.errors).toBeUndefined();
    const connection = res.body.data.task.events;
    expect(connection.totalCount).toBe(connection.edges.length);
    return connection.edges.map((edge: { node: { seq: number; kind: string; payload: Record<string, unknown> } }) => edge.node);
  }

  async statusEvents(id: string): Promise<Array<{ seq: number; status: unknown }>> {
    return (await this.events(id)).filter((e) => e.kind === 'STATUS').map((e) => ({ seq: e.seq, status: e.payload.status }));
  }

  async list(variables: Record<string, unknown>) {
    const res = await this.api.gql(LIST, variables, this.member);
    expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
    const connection = res.body.data.tasks;
    return {
      totalCount: connection.totalCount as number,
      pageInfo: connection.pageInfo as { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null },
      ids: connection.edges.map((edge: { node: { id: string } }) => edge.node.id) as string[],
      cursors: connection.edges.map((edge: { cursor: string }) => edge.cursor) as string[],
    };
  }

  row(globalId: string) {
    return this.api.prisma.task.findUniqueOrThrow({ where: { id: rawId(globalId) } });
  }

  /** The BullMQ job of the task's current attempt, looked up with the job id stored on the task. */
  async job(globalId: string) {
    const row = await this.row(globalId);
    expect(row.jobId).toEqual(expect.any(String));
    return { row, job: await this.api.queues.get(row.queue).getJob(row.jobId!) };
  }

  /** Everything a failed submit must not change: task and event rows, and every queue's job counts. */
  async footprint() {
    const jobs: Record<string, Record<string, number>> = {};
    for (const queue of queueNamesList) jobs[queue] = await this.api.queues.get(queue).getJobCounts();
    return { tasks: await this.api.prisma.task.count(), events: await this.api.prisma.taskEvent.count(), jobs };
  }
}

/** Subscribes to the channel the API uses to tell workers to abort a task; next() waits for one message. */
async function listenForControl(target: TestApi) {
  const subscriber = new Redis(target.redisUrl);
  const messages: unknown[] = [];
  const waiting: Array<(message: unknown) => void> = [];
  subscriber.on('message', (_channel: string, text: string) => {
    const message = JSON.parse(text) as unknown;
    const resolve = waiting.shift();
    if (resolve) resolve(message);
    else messages.push(message);
  });
  await subscriber.subscribe(controlChannel(target.queuePrefix));
  return {
    next(timeoutMs = 3000): Promise<unknown> {
      if (messages.length) return Promise.resolve(messages.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no control message')), timeoutMs);
        waiting.push((message) => {
          clearTimeout(timer);
          resolve(message);
        });
      });
    },
    async close() {
      subscriber.disconnect();
    },
  };
}

let api: TestApi;
let c: Client;
/** A second API, so the listing tests see exactly the tasks they create. */
let listApi: TestApi;
/** The same API wired to a Redis that is not there (nothing listens on port 1). */
let down: TestApi;

beforeAll(async () => {
  [api, listApi, down] = await Promise.all([
    startTestApi('tasks'),
    startTestApi('tasks_list'),
    startTestApi('tasks_down', { redisUrl: 'redis://127.0.0.1:1' }),
  ]);
  // BullMQ prints every reconnect failure of a queue without an error listener; keep the output readable.
  for (const queue of queueNamesList) down.queues.get(queue).on('error', () => {});
  c = await Client.start(api, ['uat']);
});
afterAll(async () => {
  await Promise.all([api?.close(), listApi?.close(), down?.close()]);
});

describe('submitTask', () => {
  let art: Record<'art-1' | 'art-2' | 'art-3' | 'art-4' | 'art-5' | 'art-6', string>;
  beforeAll(async () => {
    art = await uploadArtifacts(api, ['art-1', 'art-2', 'art-3', 'art-4', 'art-5', 'art-6']);
  });

  it('queues an ORG_CHECK with every default on the CRITICAL queue, and adds its BullMQ job', async () => {
    const before = Date.now();
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    expect(task).toMatchObject({
      type: 'ORG_CHECK',
      status: 'QUEUED',
      queue: 'CRITICAL',
      priority: 50,
      maxAttempts: 3,
      attempts: 0,
      progress: 0,
      phase: null,
      params: {},
      error: null,
      source: 'API',
      requestedBy: 'member-user/member-1',
      runAt: null,
      orgAlias: 'uat',
      org: { alias: 'uat' },
      startedAt: null,
      finishedAt: null,
    });
    expect(new Date(task.createdAt).getTime()).toBeGreaterThanOrEqual(before - 1000);

    const { row, job } = await c.job(task.id);
    expect(row.status).toBe('QUEUED');
    expect(job).toBeTruthy();
    expect(job!.id).toBe(row.jobId);
    expect(job!.name).toBe('ORG_CHECK');
    expect(job!.data).toEqual({ taskId: row.id });
    expect(job!.opts.priority).toBe(51);
    expect(job!.opts.delay ?? 0).toBe(0);
    expect(await job!.getState()).toBe('prioritized');
    // Only on its own queue.
    expect(await api.queues.get('NORMAL').getJob(row.jobId!)).toBeFalsy();
    expect(await api.queues.get('BATCH').getJob(row.jobId!)).toBeFalsy();
  });

  it('queues a RETRIEVE of members on BATCH, with names trimmed', async () => {
    const task = await c.submit({
      type: 'RETRIEVE',
      org: 'uat',
      params: { members: [{ type: ' ApexClass ', members: ['*'] }, { type: 'CustomObject', members: ['Account', 'Invoice__c'] }] },
    });
    expect(task).toMatchObject({ type: 'RETRIEVE', status: 'QUEUED', queue: 'BATCH', priority: 50 });
    expect(task.params).toEqual({
      members: [{ type: 'ApexClass', members: ['*'] }, { type: 'CustomObject', members: ['Account', 'Invoice__c'] }],
      pollIntervalMs: 2000,
    });
    const { job } = await c.job(task.id);
    expect(job!.queueName).toBe('batch');
    expect(job!.name).toBe('RETRIEVE');
    expect(job!.data).toEqual({ taskId: rawId(task.id) });
  });

  it('queues a RETRIEVE of a package.xml with an API version', async () => {
    const packageXml = '<?xml version="1.0"?><Package><types><members>*</members><name>ApexClass</name></types></Package>';
    const task = await c.submit({ type: 'RETRIEVE', org: 'uat', params: { packageXml, apiVersion: '62.0' } });
    expect(task.params).toEqual({ packageXml, apiVersion: '62.0', pollIntervalMs: 2000 });
    expect(task.queue).toBe('BATCH');
    expect((await c.job(task.id)).job).toBeTruthy();
  });

  it('fills in DEPLOY defaults', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['art-1'] } });
    expect(task).toMatchObject({ type: 'DEPLOY', status: 'QUEUED', queue: 'NORMAL', priority: 50 });
    expect(task.params).toEqual({
      artifactId: art['art-1'],
      testLevel: 'RunLocalTests',
      runTests: [],
      rollbackOnError: true,
      ignoreWarnings: false,
      singlePackage: true,
      pollIntervalMs: 2000,
    });
    const { row, job } = await c.job(task.id);
    expect(row.input).toEqual(task.params); // stored validated, defaults included
    expect(job!.queueName).toBe('normal');
    expect(job!.name).toBe('DEPLOY');
  });

  it('queues a VALIDATE with specified tests', async () => {
    const task = await c.submit({
      type: 'VALIDATE',
      org: 'uat',
      params: { artifactId: art['art-2'], testLevel: 'RunSpecifiedTests', runTests: [' AccountTest ', 'InvoiceTest'], ignoreWarnings: true, apiVersion: '61.0' },
    });
    expect(task).toMatchObject({ type: 'VALIDATE', status: 'QUEUED', queue: 'NORMAL' });
    expect(task.params).toEqual({
      artifactId: art['art-2'],
      testLevel: 'RunSpecifiedTests',
      runTests: ['AccountTest', 'InvoiceTest'],
      rollbackOnError: true,
      ignoreWarnings: true,
      singlePackage: true,
      apiVersion: '61.0',
      pollIntervalMs: 2000,
    });
    expect((await c.job(task.id)).job!.name).toBe('VALIDATE');
  });

  it('keeps an explicit singlePackage and pollIntervalMs', async () => {
    const task = await c.submit({ type: 'VALIDATE', org: 'uat', params: { artifactId: art['art-5'], singlePackage: false, pollIntervalMs: 500 } });
    expect(task.params).toEqual({
      artifactId: art['art-5'],
      testLevel: 'RunLocalTests',
      runTests: [],
      rollbackOnError: true,
      ignoreWarnings: false,
      singlePackage: false,
      pollIntervalMs: 500,
    });
    expect((await c.row(task.id)).input).toEqual(task.params);
  });

  it('accepts an artifact\'s global id and stores its raw UUID', async () => {
    const artifactId = art['art-6'];
    const globalId = Buffer.from(`Artifact:${artifactId}`).toString('base64');
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: globalId } });
    expect(task.params.artifactId).toBe(artifactId);
    expect((await c.row(task.id)).input).toMatchObject({ artifactId });
    expect((await c.job(task.id)).job!.name).toBe('DEPLOY');
  });

  it('queues an ORG_CHECK with an API version', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat', params: { apiVersion: '62.0' } });
    expect(task).toMatchObject({ type: 'ORG_CHECK', status: 'QUEUED', queue: 'CRITICAL' });
    expect(task.params).toEqual({ apiVersion: '62.0' });
    expect((await c.row(task.id)).input).toEqual({ apiVersion: '62.0' });
  });

  it.each([
    ['a 15-character deployId', { deployId: '0Af5g00000AbCdE' }],
    ['an 18-character deployId', { deployId: '0Af5g00000AbCdEFGH' }],
  ])('queues a QUICK_DEPLOY with %s', async (_label, params) => {
    const task = await c.submit({ type: 'QUICK_DEPLOY', org: 'uat', params });
    expect(task).toMatchObject({ type: 'QUICK_DEPLOY', status: 'QUEUED', queue: 'NORMAL', params });
    expect(task.params).toEqual({ ...params, pollIntervalMs: 2000 });
    const { job } = await c.job(task.id);
    expect(job!.name).toBe('QUICK_DEPLOY');
    expect(job!.queueName).toBe('normal');
  });

  it('queues a QUICK_DEPLOY with a validationTaskId, copying the validation\'s deployId', async () => {
    const validation = await succeededValidation(api, 'uat', { deployId: '0Af5g00000AbCdEFGH' });
    const task = await c.submit({ type: 'QUICK_DEPLOY', org: 'uat', params: { validationTaskId: validation.id } });
    expect(task).toMatchObject({ type: 'QUICK_DEPLOY', status: 'QUEUED', queue: 'NORMAL' });
    expect(task.params).toEqual({ validationTaskId: validation.id, deployId: '0Af5g00000AbCdEFGH', pollIntervalMs: 2000 });
    const { row, job } = await c.job(task.id);
    expect(row.input).toEqual(task.params);
    expect(job!.name).toBe('QUICK_DEPLOY');
    expect(job!.queueName).toBe('normal');
  });

  it.each([
    [0, 101],
    [1, 100],
    [73, 28],
    [100, 1],
  ])('maps priority %i to BullMQ priority %i', async (priority, bull) => {
    // CRITICAL, so that no high-priority job is left on BATCH (the worker test below takes from BATCH).
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat', priority, queue: 'CRITICAL' });
    expect(task.priority).toBe(priority);
    const { job } = await c.job(task.id);
    expect(job!.opts.priority).toBe(bull);
    expect(await job!.getState()).toBe('prioritized');
  });

  it('honours an explicit queue and maxAttempts', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['art-3'] }, queue: 'CRITICAL', maxAttempts: 10 });
    expect(task).toMatchObject({ queue: 'CRITICAL', maxAttempts: 10 });
    const { row, job } = await c.job(task.id);
    expect(row.queue).toBe('CRITICAL');
    expect(job!.queueName).toBe('critical');
    expect(await api.queues.get('NORMAL').getJob(row.jobId!)).toBeFalsy();
  });

  it('schedules a task with a future runAt as a delayed job', async () => {
    const runAt = new Date(Date.now() + 60 * 60_000);
    runAt.setMilliseconds(0);
    const submittedAt = Date.now();
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['art-4'] }, runAt: runAt.toISOString() });
    expect(task.status).toBe('SCHEDULED');
    expect(task.runAt).toBe(runAt.toISOString());
    const { row, job } = await c.job(task.id);
    expect(row.status).toBe('SCHEDULED');
    expect(row.runAt?.toISOString()).toBe(runAt.toISOString());
    expect(await job!.getState()).toBe('delayed');
    expect(job!.opts.priority).toBe(51);
    const expectedDelay = runAt.getTime() - submittedAt;
    expect(Math.abs(job!.opts.delay! - expectedDelay)).toBeLessThan(2000);
    // BullMQ runs it at timestamp + delay: that is runAt.
    expect(Math.abs(job!.timestamp + job!.opts.delay! - runAt.getTime())).toBeLessThan(1000);
  });

  it('refuses a runAt more than two years ahead (the task would hold its org and artifact that long)', async () => {
    const before = await api.prisma.task.count();
    const result = await c.submitRaw({ type: 'ORG_CHECK', org: 'uat', runAt: '9999-12-31T23:59:59Z' });
    expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['runAt'], message: 'must be at most 731 days (two years) ahead' }] });
    expect(await api.prisma.task.count()).toBe(before);
    const inTwoYears = new Date(Date.now() + 730 * 24 * 3_600_000).toISOString();
    expect((await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt: inTwoYears })).status).toBe('SCHEDULED');
  });

  it('queues at once when runAt is already past', async () => {
    const runAt = new Date(Date.now() - 60_000).toISOString();
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt });
    expect(task.status).toBe('QUEUED');
    expect(task.runAt).toBe(runAt);
    const { job } = await c.job(task.id);
    expect(job!.opts.delay ?? 0).toBe(0);
    expect(await job!.getState()).toBe('prioritized');
  });

  it('starts every task with one STATUS event naming its first status', async () => {
    const queued = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    const scheduled = await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt: new Date(Date.now() + 600_000).toISOString() });
    expect(await c.statusEvents(queued.id)).toEqual([{ seq: 1, status: 'QUEUED' }]);
    expect(await c.statusEvents(scheduled.id)).toEqual([{ seq: 1, status: 'SCHEDULED' }]);
  });
});

describe('submitTask validation', () => {
  /** Stands in the table below for a real uploaded artifact (the table is built before any hook runs). */
  const artifactId = '<uploaded artifact>';
  let uploaded: string;
  beforeAll(async () => {
    ({ 'art-x': uploaded } = await uploadArtifacts(api, ['art-x']));
  });
  /** The input with the placeholder artifactId replaced by the uploaded artifact's id. */
  const withArtifact = (input: Record<string, unknown>): Record<string, unknown> => {
    const params = input.params as Record<string, unknown> | undefined;
    return params?.artifactId === artifactId ? { ...input, params: { ...params, artifactId: uploaded } } : input;
  };
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['an unknown ORG_CHECK param', { type: 'ORG_CHECK', params: { force: true } }, ['params']],
    ['a misspelt DEPLOY param', { type: 'DEPLOY', params: { artifactId, testlevel: 'NoTestRun' } }, ['params']],
    ['an unknown key inside RETRIEVE members', { type: 'RETRIEVE', params: { members: [{ type: 'ApexClass', members: ['*'], extra: 1 }] } }, ['params', 'members', '0']],
    ['params that are not an object', { type: 'ORG_CHECK', params: 'yes' }, ['params']],
    ['RunSpecifiedTests without runTests', { type: 'DEPLOY', params: { artifactId, testLevel: 'RunSpecifiedTests' } }, ['params', 'runTests']],
    ['RunSpecifiedTests with an empty runTests', { type: 'VALIDATE', params: { artifactId, testLevel: 'RunSpecifiedTests', runTests: [] } }, ['params', 'runTests']],
    ['runTests without RunSpecifiedTests', { type: 'VALIDATE', params: { artifactId, runTests: ['AccountTest'] } }, ['params', 'runTests']],
    ['an unknown testLevel', { type: 'DEPLOY', params: { artifactId, testLevel: 'RunEverything' } }, ['params', 'testLevel']],
    ['a DEPLOY without artifactId', { type: 'DEPLOY', params: {} }, ['params', 'artifactId']],
    ['a malformed apiVersion', { type: 'DEPLOY', params: { artifactId, apiVersion: '62' } }, ['params', 'apiVersion']],
    ['a malformed ORG_CHECK apiVersion', { type: 'ORG_CHECK', params: { apiVersion: 'v62' } }, ['params', 'apiVersion']],
    ['a pollIntervalMs below 100', { type: 'DEPLOY', params: { artifactId, pollIntervalMs: 99 } }, ['params', 'pollIntervalMs']],
    ['a pollIntervalMs above a minute', { type: 'RETRIEVE', params: { packageXml: '<Package/>', pollIntervalMs: 60_001 } }, ['params', 'pollIntervalMs']],
    ['a singlePackage that is not a boolean', { type: 'VALIDATE', params: { artifactId, singlePackage: 'yes' } }, ['params', 'singlePackage']],
    ['a DEPLOY artifactId that names no artifact', { type: 'DEPLOY', params: { artifactId: randomUUID() } }, ['params', 'artifactId']],
    ['a VALIDATE artifactId that is not an id', { type: 'VALIDATE', params: { artifactId: 'art-1' } }, ['params', 'artifactId']],
    ['another type\'s global id as artifactId', { type: 'DEPLOY', params: { artifactId: Buffer.from(`Task:${randomUUID()}`).toString('base64') } }, ['params', 'artifactId']],
    ['priority 101', { type: 'ORG_CHECK', priority: 101 }, ['priority']],
    ['priority -1', { type: 'ORG_CHECK', priority: -1 }, ['priority']],
    ['maxAttempts 0', { type: 'ORG_CHECK', maxAttempts: 0 }, ['maxAttempts']],
    ['maxAttempts 11', { type: 'ORG_CHECK', maxAttempts: 11 }, ['maxAttempts']],
    ['an empty org', { type: 'ORG_CHECK', org: '   ' }, ['org']],
    ['both members and packageXml', { type: 'RETRIEVE', params: { members: [{ type: 'ApexClass', members: ['*'] }], packageXml: '<Package/>' } }, ['params', 'members']],
    ['neither members nor packageXml', { type: 'RETRIEVE', params: {} }, ['params', 'members']],
    ['a RETRIEVE member list that is empty', { type: 'RETRIEVE', params: { members: [{ type: 'ApexClass', members: [] }] } }, ['params', 'members', '0', 'members']],
    ['a deployId that is too short', { type: 'QUICK_DEPLOY', params: { deployId: '0Af5g00000AbCd' } }, ['params', 'deployId']],
    ['a 16-character deployId', { type: 'QUICK_DEPLOY', params: { deployId: '0Af5g00000AbCdEF' } }, ['params', 'deployId']],
    ['a deployId with punctuation', { type: 'QUICK_DEPLOY', params: { deployId: '0Af5g00000AbC-E' } }, ['params', 'deployId']],
    ['a validationTaskId that is not a UUID', { type: 'QUICK_DEPLOY', params: { validationTaskId: 'task-1' } }, ['params', 'validationTaskId']],
    ['a validationTaskId that names no task', { type: 'QUICK_DEPLOY', params: { validationTaskId: randomUUID() } }, ['params', 'validationTaskId']],
    ['both deployId and validationTaskId', { type: 'QUICK_DEPLOY', params: { deployId: '0Af5g00000AbCdE', validationTaskId: randomUUID() } }, ['params', 'validationTaskId']],
    ['neither deployId nor validationTaskId', { type: 'QUICK_DEPLOY', params: {} }, ['params', 'validationTaskId']],
  ];

  it('refuses NoTestRun for a DEPLOY or VALIDATE on a production org (Salesforce would), and takes it on a sandbox', async () => {
    const res = await api.gql(
      `mutation($input: RegisterOrgInput!) { registerOrg(input: $input) { __typename } }`,
      { input: { alias: 'prod-notest', kind: 'PRODUCTION', credentials: { instanceUrl: 'https://prodnotest.my.salesforce.com', refreshToken: '5Aep861prodnotest' } } },
      c.owner,
    );
    expect(res.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
    const before = await c.footprint();
    for (const type of ['DEPLOY', 'VALIDATE']) {
      const result = await c.submitRaw({ type, org: 'prod-notest', params: { artifactId: uploaded, testLevel: 'NoTestRun' } });
      expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
      expect(result.fieldErrors!.map((e) => e.path)).toEqual([['params', 'testLevel']]);
    }
    expect(await c.footprint()).toEqual(before);
    expect((await c.submitRaw({ type: 'DEPLOY', org: 'prod-notest', params: { artifactId: uploaded, testLevel: 'RunLocalTests' } })).__typename).toBe('SubmitTaskSuccess');
    expect((await c.submitRaw({ type: 'VALIDATE', org: 'uat', params: { artifactId: uploaded, testLevel: 'NoTestRun' } })).__typename).toBe('SubmitTaskSuccess');
  });

  it.each(cases)('rejects %s at its field path, persisting and enqueueing nothing', async (_label, input, path) => {
    const before = await c.footprint();
    const result = await c.submitRaw({ org: 'uat', ...withArtifact(input) });
    expect(result.__typename).toBe('ValidationError');
    expect(result.code).toBe('VALIDATION_FAILED');
    expect(result.fieldErrors!.map((e) => e.path)).toEqual([path]);
    expect(result.fieldErrors![0]!.message.length).toBeGreaterThan(0);
    expect(result.message).toContain(path.join('.'));
    expect(result.task).toBeUndefined();
    expect(await c.footprint()).toEqual(before);
  });

  it('refuses a validationTaskId that is not a SUCCEEDED VALIDATE of the same org, persisting and enqueueing nothing', async () => {
    await c.registerOrg('validation-elsewhere');
    const deployId = '0Af5g00000AbCdEFGH';
    const refused = await Promise.all([
      // Each differs from an acceptable validation in one respect only (every one but the last has a deployId).
      succeededValidation(api, 'uat', { deployId }, { status: 'RUNNING', progress: 40, finishedAt: null }),
      succeededValidation(api, 'uat', { deployId }, { status: 'FAILED', errorCode: 'DEPLOY_FAILED' }),
      succeededValidation(api, 'uat', { deployId }, { type: 'DEPLOY' }),
      succeededValidation(api, 'validation-elsewhere', { deployId }),
      succeededValidation(api, 'uat', { numberComponentsDeployed: 12 }),
    ]);
    for (const validation of refused) {
      const before = await c.footprint();
      const result = await c.submitRaw({ type: 'QUICK_DEPLOY', org: 'uat', params: { validationTaskId: validation.id } });
      expect(result, JSON.stringify(validation)).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
      expect(result.fieldErrors!.map((e) => e.path)).toEqual([['params', 'validationTaskId']]);
      expect(result.task).toBeUndefined();
      expect(await c.footprint()).toEqual(before);
    }
  });

  it('names the unknown keys in the message', async () => {
    const result = await c.submitRaw({ type: 'DEPLOY', org: 'uat', params: { artifactId: uploaded, testlevel: 'NoTestRun', dryRun: true } });
    expect(result.fieldErrors).toHaveLength(1);
    expect(result.fieldErrors![0]!.message).toContain('testlevel');
    expect(result.fieldErrors![0]!.message).toContain('dryRun');
  });

  it('reports several invalid params at once', async () => {
    const result = await c.submitRaw({ type: 'DEPLOY', org: 'uat', params: { testLevel: 'Sometimes', rollbackOnError: 'yes' } });
    expect(result.__typename).toBe('ValidationError');
    expect(result.fieldErrors!.map((e) => e.path.join('.')).sort()).toEqual(['params.artifactId', 'params.rollbackOnError', 'params.testLevel']);
  });

  it.each([
    ['a day past the end of February', '2027-02-30T00:00:00Z'],
    ['February 29 of a common year', '2027-02-29T00:00:00Z'],
    ['April 31', '2026-04-31T09:00:00+02:00'],
    ['hour 24', '2026-05-01T24:00:00Z'],
    ['year 0', '0000-01-01T00:00:00Z'],
    ['year 1 that its offset takes back into year 0', '0001-01-01T00:30:00+01:00'],
    ['year 9999 that its offset takes into year 10000', '9999-12-31T23:30:00-01:00'],
  ])('refuses %s as runAt as it refuses a malformed DateTime, persisting and enqueueing nothing', async (_label, runAt) => {
    const before = await c.footprint();
    const malformed = await api.gql(SUBMIT, { input: { type: 'ORG_CHECK', org: 'uat', runAt: 'tomorrow' } }, c.member);
    const res = await api.gql(SUBMIT, { input: { type: 'ORG_CHECK', org: 'uat', runAt } }, c.member);
    expect(res.status).toBe(malformed.status);
    expect(res.body.data?.submitTask ?? null).toBeNull();
    expect(res.body.errors).toEqual(malformed.body.errors);
    expect(res.body.errors![0]!.message).toContain('input.runAt');
    expect(res.body.errors![0]!.message).toContain('DateTime must be an ISO 8601 string');
    // Written into the document rather than passed as a variable, it is refused the same way.
    const literal = await api.gql(`mutation { submitTask(input: {type: ORG_CHECK, org: "uat", runAt: "${runAt}"}) { __typename } }`, {}, c.member);
    expect(literal.body.data?.submitTask ?? null).toBeNull();
    expect(literal.body.errors![0]!.message).toContain('DateTime must be an ISO 8601 string');
    expect(await c.footprint()).toEqual(before);
  });

  it('takes February 29 of a leap year and the first instant of year 1 as runAt', async () => {
    const leap = await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt: '2028-02-29T23:30:00-01:00' });
    expect(leap).toMatchObject({ status: 'SCHEDULED', runAt: '2028-03-01T00:30:00.000Z' });
    const first = await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt: '0001-01-01T00:00:00Z' });
    expect(first).toMatchObject({ status: 'QUEUED', runAt: '0001-01-01T00:00:00.000Z' });
    for (const { id } of [leap, first]) expect(await c.cancel(id)).toMatchObject({ __typename: 'CancelTaskSuccess' });
  });

  it('answers ORG_NOT_FOUND for an unknown org, persisting and enqueueing nothing', async () => {
    const before = await c.footprint();
    const result = await c.submitRaw({ type: 'ORG_CHECK', org: 'nowhere' });
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
    expect(result.message).toContain('nowhere');
    expect(await c.footprint()).toEqual(before);
  });

  it('refuses a VIEWER, persisting nothing', async () => {
    const before = await c.footprint();
    const res = await api.gql(SUBMIT, { input: { type: 'ORG_CHECK', org: 'uat' } }, await api.token('VIEWER'));
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(res.body.data?.submitTask ?? null).toBeNull();
    expect(await c.footprint()).toEqual(before);
  });
});

describe('tasks and task queries', () => {
  let l: Client;
  /** In creation order; each entry is the global id. */
  const t: string[] = [];
  let orgGlobalId: string;
  /** Artifacts in listApi's own database. */
  let listArt: Record<'a2' | 'a3' | 'a4', string>;

  beforeAll(async () => {
    l = await Client.start(listApi, ['list-a']);
    listArt = await uploadArtifacts(listApi, ['a2', 'a3', 'a4']);
    orgGlobalId = await l.registerOrg('list-b');
    // 0: ORG_CHECK   list-a CRITICAL QUEUED    API
    t.push((await l.submit({ type: 'ORG_CHECK', org: 'list-a' })).id);
    // 1: RETRIEVE    list-a BATCH    QUEUED    API
    t.push((await l.submit({ type: 'RETRIEVE', org: 'list-a', params: { packageXml: '<Package/>' } })).id);
    // 2: DEPLOY      list-b NORMAL   QUEUED    API
    t.push((await l.submit({ type: 'DEPLOY', org: 'list-b', params: { artifactId: listArt['a2'] } })).id);
    // 3: VALIDATE    list-b NORMAL   SCHEDULED API
    t.push((await l.submit({ type: 'VALIDATE', org: 'list-b', params: { artifactId: listArt['a3'] }, runAt: new Date(Date.now() + 3_600_000).toISOString() })).id);
    // 4: DEPLOY      list-a BATCH    QUEUED    WEBHOOK
    const webhook = await listApi.services.tasks.submit(cliPrincipal, { type: 'DEPLOY', org: 'list-a', params: { artifactId: listArt['a4'] }, queue: 'BATCH', source: 'WEBHOOK' });
    t.push(Buffer.from(`Task:${webhook.id}`).toString('base64'));
    // 5: ORG_CHECK   list-b CRITICAL CANCELLED SCHEDULE
    const scheduled = await listApi.services.tasks.submit(cliPrincipal, { type: 'ORG_CHECK', org: 'list-b', source: 'SCHEDULE' });
    t.push(Buffer.from(`Task:${scheduled.id}`).toString('base64'));
    expect((await l.cancel(t[5]!)).__typename).toBe('CancelTaskSuccess');
  });
  /** Global ids of t[...] newest first. */
  const newest = (...indexes: number[]) => indexes.sort((a, b) => b - a).map((i) => t[i]!);

  it('lists every task newest first, with the total', async () => {
    const page = await l.list({ first: 50 });
    expect(page.ids).toEqual(newest(0, 1, 2, 3, 4, 5));
    expect(page.totalCount).toBe(6);
    expect(page.pageInfo.hasNextPage).toBe(false);
    // Ids the API hands out for tasks it did not create through GraphQL are the same global ids.
    const res = await listApi.gql(LIST, { first: 50 }, l.member);
    const sources = res.body.data.tasks.edges.map((e: { node: { source: string } }) => e.node.source);
    expect(sources).toEqual(['SCHEDULE', 'WEBHOOK', 'API', 'API', 'API', 'API']);
  });

  it.each<[string, Record<string, unknown>, number[]]>([
    ['status QUEUED', { status: ['QUEUED'] }, [0, 1, 2, 4]],
    ['status SCHEDULED', { status: ['SCHEDULED'] }, [3]],
    ['status CANCELLED or SCHEDULED', { status: ['CANCELLED', 'SCHEDULED'] }, [3, 5]],
    ['status RUNNING', { status: ['RUNNING'] }, []],
    ['type DEPLOY', { type: ['DEPLOY'] }, [2, 4]],
    ['type DEPLOY or VALIDATE', { type: ['DEPLOY', 'VALIDATE'] }, [2, 3, 4]],
    ['type QUICK_DEPLOY', { type: ['QUICK_DEPLOY'] }, []],
    ['org list-a', { org: 'list-a' }, [0, 1, 4]],
    ['org list-b', { org: 'list-b' }, [2, 3, 5]],
    ['an unknown org', { org: 'nowhere' }, []],
    ['queue BATCH', { queue: ['BATCH'] }, [1, 4]],
    ['queue CRITICAL or NORMAL', { queue: ['CRITICAL', 'NORMAL'] }, [0, 2, 3, 5]],
    ['source API', { source: ['API'] }, [0, 1, 2, 3]],
    ['source WEBHOOK', { source: ['WEBHOOK'] }, [4]],
    ['source WEBHOOK or SCHEDULE', { source: ['WEBHOOK', 'SCHEDULE'] }, [4, 5]],
    ['org and queue', { org: 'list-a', queue: ['BATCH'] }, [1, 4]],
    ['type and queue', { type: ['DEPLOY'], queue: ['NORMAL'] }, [2]],
    ['status and org', { status: ['QUEUED'], org: 'list-b' }, [2]],
    ['status, type, org, queue and source', { status: ['QUEUED', 'CANCELLED'], type: ['DEPLOY', 'ORG_CHECK'], org: 'list-a', queue: ['BATCH', 'CRITICAL'], source: ['WEBHOOK'] }, [4]],
    ['filters that exclude each other', { org: 'list-a', source: ['SCHEDULE'] }, []],
  ])('filters by %s', async (_label, filter, expected) => {
    const page = await l.list({ filter, first: 50 });
    expect(page.ids).toEqual(newest(...expected));
    expect(page.totalCount).toBe(expected.length);
  });

  it('pages forward with first/after', async () => {
    const one = await l.list({ first: 2 });
    expect(one.ids).toEqual(newest(5, 4));
    expect(one.totalCount).toBe(6);
    expect(one.pageInfo.hasNextPage).toBe(true);
    expect(one.pageInfo.endCursor).toBe(one.cursors[1]);
    const two = await l.list({ first: 2, after: one.pageInfo.endCursor });
    expect(two.ids).toEqual(newest(3, 2));
    expect(two.pageInfo.hasNextPage).toBe(true);
    const three = await l.list({ first: 2, after: two.pageInfo.endCursor });
    expect(three.ids).toEqual(newest(1, 0));
    expect(three.pageInfo.hasNextPage).toBe(false);
    expect(three.totalCount).toBe(6);
  });

  it('pages backward with last/before', async () => {
    const last = await l.list({ last: 2 });
    expect(last.ids).toEqual(newest(1, 0));
    expect(last.pageInfo.hasPreviousPage).toBe(true);
    expect(last.totalCount).toBe(6);
    const before = await l.list({ last: 3, before: last.pageInfo.startCursor });
    expect(before.ids).toEqual(newest(4, 3, 2));
    expect(before.pageInfo.hasPreviousPage).toBe(true);
    const first = await l.list({ last: 3, before: before.pageInfo.startCursor });
    expect(first.ids).toEqual(newest(5));
    expect(first.pageInfo.hasPreviousPage).toBe(false);
  });

  it('pages within a filter, and totalCount counts the filtered tasks', async () => {
    const filter = { org: 'list-a' };
    const one = await l.list({ filter, first: 2 });
    expect(one.ids).toEqual(newest(4, 1));
    expect(one.totalCount).toBe(3);
    expect(one.pageInfo.hasNextPage).toBe(true);
    const two = await l.list({ filter, first: 2, after: one.pageInfo.endCursor });
    expect(two.ids).toEqual(newest(0));
    expect(two.totalCount).toBe(3);
    expect(two.pageInfo.hasNextPage).toBe(false);
    const back = await l.list({ filter: { queue: ['NORMAL'] }, last: 1 });
    expect(back.ids).toEqual(newest(2));
    expect(back.totalCount).toBe(2);
    // An empty list matches no value (a dashboard with no status ticked shows nothing), as an unknown org does.
    for (const none of [{ status: [] }, { type: [] }, { queue: [] }, { source: [] }, { org: '' }, { org: 'list-a', status: [] }]) {
      const empty = await l.list({ filter: none, first: 10 });
      expect({ ids: empty.ids, totalCount: empty.totalCount }, JSON.stringify(none)).toEqual({ ids: [], totalCount: 0 });
    }
  });

  it('finds a task by global id and by raw UUID, in either case', async () => {
    const id = t[2]!;
    const byGlobal = await l.task(id);
    expect(byGlobal).toMatchObject({ id, type: 'DEPLOY', orgAlias: 'list-b', status: 'QUEUED' });
    expect(await l.task(rawId(id))).toEqual(byGlobal);
    expect(await l.task(rawId(id).toUpperCase())).toEqual(byGlobal);
  });

  it('answers null for a task that does not exist', async () => {
    expect(await l.task(randomUUID())).toBeNull();
    expect(await l.task(Buffer.from(`Task:${randomUUID()}`).toString('base64'))).toBeNull();
  });

  it.each([
    ['another type\'s global id', () => orgGlobalId],
    ['a global id with a non-UUID', () => Buffer.from('Task:42').toString('base64')],
    ['garbage', () => 'not-an-id'],
  ])('rejects %s as a validation error at id', async (_label, id) => {
    const res = await listApi.gql(TASK, { id: id() }, l.member);
    expect(res.body.data?.task ?? null).toBeNull();
    expect(res.body.errors).toHaveLength(1);
    const [error] = res.body.errors!;
    expect(error!.path).toEqual(['task']);
    expect(error!.extensions?.code).toBe('VALIDATION_FAILED');
    expect(error!.message).toContain('must be the id of a Task');
  });

  it('lists a task\'s STATUS events in order, gap-free, and pages through them', async () => {
    const id = t[5]!; // submitted, then cancelled
    expect(await l.retry(id)).toMatchObject({ __typename: 'RetryTaskSuccess', task: { status: 'QUEUED' } });
    expect(await l.cancel(id)).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELLED' } });
    const events = await l.events(id);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(events.map((e) => [e.kind, e.payload.status])).toEqual([
      ['STATUS', 'QUEUED'],
      ['STATUS', 'CANCELLED'],
      ['STATUS', 'QUEUED'],
      ['STATUS', 'CANCELLED'],
    ]);
    expect(events[2]!.payload.retriedBy).toBe('member-user/member-1');

    // Resuming after a cursor gives the rest, still in order.
    const first = await listApi.gql(EVENTS, { id, first: 2 }, l.member);
    const page1 = first.body.data.task.events;
    expect(page1.totalCount).toBe(4);
    expect(page1.edges.map((e: { node: { seq: number } }) => e.node.seq)).toEqual([1, 2]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const rest = await listApi.gql(EVENTS, { id, first: 10, after: page1.pageInfo.endCursor }, l.member);
    expect(rest.body.data.task.events.edges.map((e: { node: { seq: number } }) => e.node.seq)).toEqual([3, 4]);
    expect(rest.body.data.task.events.pageInfo.hasNextPage).toBe(false);
  });

  describe('bad paging arguments', () => {
    const base64 = (text: string) => Buffer.from(text).toString('base64');
    let owner: string;
    beforeAll(async () => {
      owner = await listApi.token('OWNER');
    });

    /** The one error a bad argument gives: VALIDATION_FAILED at the connection, naming the arguments. */
    function expectRefused(res: { body: { errors?: Array<{ path?: unknown; extensions?: Record<string, unknown>; message: string }> } }, path: unknown[], argumentPaths: string[][]) {
      expect(res.body.errors, JSON.stringify(res.body)).toHaveLength(1);
      const [error] = res.body.errors!;
      expect(error!.path).toEqual(path);
      expect(error!.extensions?.code).toBe('VALIDATION_FAILED');
      expect((error!.extensions?.fieldErrors as Array<{ path: string[] }>).map((f) => f.path)).toEqual(argumentPaths);
      expect(error!.message).toMatch(/^Invalid input/);
    }

    // Each decodes like a cursor but holds no id of the list (the last two are no cursors at all).
    const cursors: Array<[string, string]> = [
      ['a string that is no UUID', base64('GPC:S:not-a-uuid')],
      ['an empty string', base64('GPC:S:')],
      ['a number', base64('GPC:N:123')],
      ['a date', base64('GPC:D:2026-01-01')],
      ['bytes', base64('GPC:B:true')],
      ['a JSON object', base64('GPC:J:{}')],
      ['a compound cursor (of Task.events)', base64(`GPC:T:["S:${randomUUID()}","N:1"]`)],
      ['garbage', 'not-a-cursor'],
      ['nothing', ''],
    ];
    it.each(['tasks', 'apiTokens', 'orgs', 'schedules', 'artifacts'].flatMap((field) => cursors.map(([label, cursor]) => [field, label, cursor] as const)))(
      'refuses as after and before of %s a cursor holding %s',
      async (field, _label, cursor) => {
        const after = await listApi.gql(`query($c: String) { ${field}(first: 1, after: $c) { totalCount edges { cursor } } }`, { c: cursor }, owner);
        expectRefused(after, [field], [['after']]);
        expect(after.body.data ?? null).toBeNull();
        const before = await listApi.gql(`query($c: String) { ${field}(last: 1, before: $c) { edges { cursor } } }`, { c: cursor }, owner);
        expectRefused(before, [field], [['before']]);
      },
    );

    it.each<[string, string]>([
      ['a compound cursor with no UUID', base64('GPC:T:["S:nope","N:1"]')],
      ['a number that is no seq', base64('GPC:N:abc')],
      ['a seq out of range', base64(`GPC:T:["S:${randomUUID()}","N:99999999999"]`)],
      ['a single number', base64('GPC:N:99999999999')],
      ['a cursor of the tasks list', base64(`GPC:S:${randomUUID()}`)],
    ])('refuses %s as a cursor of Task.events at that field, not at the task', async (_label, cursor) => {
      const res = await listApi.gql(EVENTS, { id: t[5]!, first: 2, after: cursor }, l.member);
      expectRefused(res, ['task', 'events'], [['after']]);
      // events is non-null, so GraphQL nulls the task; nothing else.
      expect(res.body.data).toEqual({ task: null });
    });

    it('refuses a bad cursor of Org.tasks at that field, nested in a list', async () => {
      const res = await listApi.gql('query($c: String) { orgs { edges { node { alias tasks(after: $c) { totalCount } } } } }', { c: base64('GPC:S:nope') }, l.member);
      expect(res.body.errors?.every((e) => e.extensions?.code === 'VALIDATION_FAILED' && e.path?.at(-1) === 'tasks')).toBe(true);
      expect(res.body.errors?.map((e) => e.path)).toContainEqual(['orgs', 'edges', 0, 'node', 'tasks']);
    });

    it('refuses negative page sizes and conflicting directions with VALIDATION_FAILED, naming every problem', async () => {
      const page = await l.list({ first: 2 });
      const [start, end] = [page.pageInfo.startCursor, page.pageInfo.endCursor];
      const cases: Array<[Record<string, unknown>, string[][]]> = [
        [{ first: -1 }, [['first']]],
        [{ last: -1 }, [['last']]],
        [{ first: 1, before: end }, [['before']]],
        [{ last: 1, after: start }, [['after']]],
        [{ after: start, before: end }, [['before']]],
        [{ first: -1, after: 'nope' }, [['first'], ['after']]],
      ];
      for (const [variables, argumentPaths] of cases) {
        const res = await listApi.gql(LIST, variables, l.member);
        expectRefused(res, ['tasks'], argumentPaths);
      }
      const events = await listApi.gql(EVENTS, { id: t[5]!, first: -1 }, l.member);
      expectRefused(events, ['task', 'events'], [['first']]);
    });

    it('still checks permissions first', async () => {
      const res = await listApi.gql('query($c: String) { apiTokens(after: $c) { totalCount } }', { c: 'not-a-cursor' }, l.member);
      expect(res.body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    });
  });
});

describe('cancelTask', () => {
  let art: Record<'c1' | 'c-run', string>;
  beforeAll(async () => {
    art = await uploadArtifacts(api, ['c1', 'c-run']);
  });

  async function expectCancelled(task: TaskView, result: MutationResult) {
    expect(result.__typename).toBe('CancelTaskSuccess');
    expect(result.task).toMatchObject({ id: task.id, status: 'CANCELLED', error: { code: 'CANCELLED' } });
    expect(result.task!.error!.message).toContain('member-user/member-1');
    expect(result.task!.finishedAt).not.toBeNull();
    expect(Date.now() - new Date(result.task!.finishedAt!).getTime()).toBeLessThan(60_000);
    const row = await c.row(task.id);
    expect(row.status).toBe('CANCELLED');
    expect(row.errorCode).toBe('CANCELLED');
    expect(row.finishedAt).not.toBeNull();
  }

  it('cancels a QUEUED task: its job is removed and a STATUS event appended', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['c1'] } });
    const { row, job } = await c.job(task.id);
    expect(job).toBeTruthy();
    await expectCancelled(task, await c.cancel(task.id));
    expect(await api.queues.get(row.queue).getJob(row.jobId!)).toBeFalsy();
    expect(await c.statusEvents(task.id)).toEqual([
      { seq: 1, status: 'QUEUED' },
      { seq: 2, status: 'CANCELLED' },
    ]);
  });

  it('cancels a SCHEDULED task: its delayed job is removed', async () => {
    const task = await c.submit({ type: 'RETRIEVE', org: 'uat', params: { packageXml: '<Package/>' }, runAt: new Date(Date.now() + 86_400_000).toISOString() });
    const { row, job } = await c.job(task.id);
    expect(await job!.getState()).toBe('delayed');
    const before = (await api.queues.get('BATCH').getJobCounts('delayed')).delayed!;
    await expectCancelled(task, await c.cancel(task.id));
    expect(await api.queues.get('BATCH').getJob(row.jobId!)).toBeFalsy();
    expect((await api.queues.get('BATCH').getJobCounts('delayed')).delayed).toBe(before - 1);
    expect(await c.statusEvents(task.id)).toEqual([
      { seq: 1, status: 'SCHEDULED' },
      { seq: 2, status: 'CANCELLED' },
    ]);
  });

  it('accepts the raw UUID', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    await expectCancelled(task, await c.cancel(rawId(task.id)));
  });

  it('refuses to cancel twice, naming the current status, and appends nothing', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    await expectCancelled(task, await c.cancel(task.id));
    const again = await c.cancel(task.id);
    expect(again).toMatchObject({ __typename: 'InvalidStateError', code: 'TASK_NOT_CANCELLABLE', currentStatus: 'CANCELLED' });
    expect(await c.statusEvents(task.id)).toHaveLength(2);
    expect((await c.row(task.id)).lastEventSeq).toBe(2);
  });

  it.each(['SUCCEEDED', 'FAILED'] as const)('refuses to cancel a %s task', async (status) => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    await api.prisma.task.update({ where: { id: rawId(task.id) }, data: { status, startedAt: new Date(), finishedAt: new Date() } });
    const result = await c.cancel(task.id);
    expect(result).toMatchObject({ __typename: 'InvalidStateError', code: 'TASK_NOT_CANCELLABLE', currentStatus: status });
    const row = await c.row(task.id);
    expect(row.status).toBe(status);
    expect(row.lastEventSeq).toBe(1);
  });

  it('asks the worker to stop a RUNNING task rather than cancelling it outright', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['c-run'] } });
    const { row: queued } = await c.job(task.id);
    // What a worker does when it starts the task (no workers run in these tests): take the job, mark it RUNNING.
    await api.queues.get(queued.queue).remove(queued.jobId!);
    await api.prisma.task.update({ where: { id: queued.id }, data: { status: 'RUNNING', startedAt: new Date(), attempts: 1 } });
    const control = await listenForControl(api);
    try {
      const result = await c.cancel(task.id);
      expect(result.__typename).toBe('CancelTaskSuccess');
      expect(result.task).toMatchObject({ status: 'RUNNING', error: null, finishedAt: null });
      const requestedAt = result.task!.cancelRequestedAt;
      expect(requestedAt).not.toBeNull();
      // The worker hears about it at once.
      expect(await control.next()).toEqual({ type: 'cancel', taskId: queued.id });
      const events = await c.events(task.id);
      expect(events.map((e) => e.seq)).toEqual([1, 2]);
      expect(events[1]).toMatchObject({ kind: 'LOG', payload: { level: 'warn' } });
      expect(events[1]!.payload.message).toContain('member-user/member-1');

      // Asking again is fine; the first request time stays.
      const again = await c.cancel(task.id);
      expect(again.task).toMatchObject({ status: 'RUNNING', cancelRequestedAt: requestedAt });
      expect(await control.next()).toEqual({ type: 'cancel', taskId: queued.id });
      expect((await c.events(task.id)).map((e) => e.seq)).toEqual([1, 2, 3]);
    } finally {
      await control.close();
    }
  });

  it('cancels a QUEUED task whose job a BullMQ worker has just taken, and tells that worker to stop', async () => {
    // Priority 100 on BATCH: no other waiting job there outranks it, so the worker takes this one.
    const task = await c.submit({ type: 'RETRIEVE', org: 'uat', params: { packageXml: '<Package/>' }, priority: 100 });
    const { row } = await c.job(task.id);
    const connection = new Redis(api.redisUrl, { maxRetriesPerRequest: null });
    const worker = new Worker('batch', null, { connection, prefix: api.queuePrefix, autorun: false });
    const control = await listenForControl(api);
    try {
      const taken = await worker.getNextJob('test-worker-token', { block: false });
      expect(taken?.id).toBe(row.jobId);
      expect(await api.queues.get('BATCH').getJob(row.jobId!).then((j) => j!.getState())).toBe('active');

      const result = await c.cancel(task.id);
      expect(result.__typename).toBe('CancelTaskSuccess');
      expect(result.task).toMatchObject({ status: 'CANCELLED', error: { code: 'CANCELLED' } });
      // The job could not be removed (the worker holds its lock), so the worker is told instead.
      expect(await control.next()).toEqual({ type: 'cancel', taskId: row.id });
      expect(await api.queues.get('BATCH').getJob(row.jobId!).then((j) => j!.getState())).toBe('active');
      expect(await c.statusEvents(task.id)).toEqual([
        { seq: 1, status: 'QUEUED' },
        { seq: 2, status: 'CANCELLED' },
      ]);
    } finally {
      await control.close();
      await worker.close(true);
      connection.disconnect();
    }
  });

  it('answers TASK_NOT_FOUND for an unknown task and VALIDATION_FAILED for a wrong id', async () => {
    expect(await c.cancel(randomUUID())).toMatchObject({ __typename: 'NotFoundError', code: 'TASK_NOT_FOUND' });
    const orgId = await c.registerOrg('cancel-org');
    const wrongType = await c.cancel(orgId);
    expect(wrongType).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(wrongType.fieldErrors!.map((e) => e.path)).toEqual([['id']]);
  });

  it('refuses a VIEWER, leaving the task queued', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    const res = await api.gql(CANCEL, { id: task.id }, await api.token('VIEWER'));
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await c.row(task.id)).status).toBe('QUEUED');
    expect((await c.job(task.id)).job).toBeTruthy();
  });
});

describe('retryTask', () => {
  let art: Record<'r1' | 'r2', string>;
  beforeAll(async () => {
    art = await uploadArtifacts(api, ['r1', 'r2']);
  });

  it('re-queues a CANCELLED task as a new job; its event log continues', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['r1'] }, priority: 70 });
    const first = await c.row(task.id);
    expect((await c.cancel(task.id)).__typename).toBe('CancelTaskSuccess');
    // Nobody is subscribed to notifications here: nothing is left pending for the reconciler.
    expect((await c.row(task.id)).notificationsPending).toBe(false);

    const result = await c.retry(task.id);
    expect(result.__typename).toBe('RetryTaskSuccess');
    expect(result.task).toMatchObject({ id: task.id, status: 'QUEUED', error: null, finishedAt: null, priority: 70, queue: 'NORMAL' });
    const { row, job } = await c.job(task.id);
    expect(row.status).toBe('QUEUED');
    expect(row.errorCode).toBeNull();
    expect(row.errorMessage).toBeNull();
    expect(row.jobId).not.toBe(first.jobId);
    expect(job).toBeTruthy();
    expect(job!.data).toEqual({ taskId: row.id });
    expect(job!.opts.priority).toBe(31);
    expect(await job!.getState()).toBe('prioritized');
    expect(await api.queues.get('NORMAL').getJob(first.jobId!)).toBeFalsy();
    expect(await c.statusEvents(task.id)).toEqual([
      { seq: 1, status: 'QUEUED' },
      { seq: 2, status: 'CANCELLED' },
      { seq: 3, status: 'QUEUED' },
    ]);
  });

  it("clears the run before's result: a retry that ends without one of its own shows none", async () => {
    const task = await c.submit({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 1, stepMs: 1 } });
    expect((await c.cancel(task.id)).__typename).toBe('CancelTaskSuccess');
    // What a failed deployment leaves: its component failures as the result.
    await api.prisma.task.update({ where: { id: rawId(task.id) }, data: { status: 'FAILED', result: { componentFailures: [{ problem: 'run 1' }] } } });
    const retried = await c.retry(task.id);
    expect(retried.__typename).toBe('RetryTaskSuccess');
    expect((await api.prisma.task.findUniqueOrThrow({ where: { id: rawId(task.id) } })).result).toBeNull();
  });

  it('refuses with ORG_NOT_FOUND a task whose org was removed, even once another org has its alias', async () => {
    await c.registerOrg('gone-retry');
    const task = await c.submit({ type: 'DIAGNOSTIC', org: 'gone-retry', params: { steps: 1, stepMs: 1 } });
    expect((await c.cancel(task.id)).__typename).toBe('CancelTaskSuccess');
    const removed = await api.gql(`mutation { removeOrg(alias: "gone-retry") { __typename } }`, {}, c.owner);
    expect(removed.body.data.removeOrg.__typename).toBe('RemoveOrgSuccess');
    await c.registerOrg('gone-retry');
    const result = await c.retry(task.id);
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
    expect((await c.row(task.id)).status).toBe('CANCELLED');
  });

  it('re-queues a cancelled SCHEDULED task at once', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat', runAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await c.cancel(task.id)).__typename).toBe('CancelTaskSuccess');
    const result = await c.retry(task.id);
    expect(result.task).toMatchObject({ status: 'QUEUED', runAt: null });
    const { job } = await c.job(task.id);
    expect(await job!.getState()).toBe('prioritized');
  });

  it('re-queues a FAILED task, clearing what the failed run left behind', async () => {
    const task = await c.submit({ type: 'VALIDATE', org: 'uat', params: { artifactId: art['r2'] } });
    const id = rawId(task.id);
    const first = await c.row(task.id);
    // What a worker leaves after a failed run (workers do not exist yet): job gone, task FAILED.
    await api.queues.get('NORMAL').remove(first.jobId!);
    await api.prisma.task.update({
      where: { id },
      data: {
        status: 'FAILED',
        errorCode: 'TIMEOUT',
        errorMessage: 'The deployment did not finish in time',
        progress: 40,
        phase: 'deploying',
        attempts: 3,
        startedAt: new Date(Date.now() - 5000),
        finishedAt: new Date(),
        result: { partial: true },
      },
    });
    const failed = await c.task(task.id);
    expect(failed).toMatchObject({ status: 'FAILED', error: { code: 'TIMEOUT', message: 'The deployment did not finish in time' } });

    const result = await c.retry(task.id);
    expect(result.__typename).toBe('RetryTaskSuccess');
    expect(result.task).toMatchObject({ status: 'QUEUED', error: null, progress: 0, phase: null, startedAt: null, finishedAt: null });
    const { row, job } = await c.job(task.id);
    expect(row.jobId).not.toBe(first.jobId);
    expect(row.errorCode).toBeNull();
    expect(job).toBeTruthy();
    expect(job!.data).toEqual({ taskId: id });
    expect(await c.statusEvents(task.id)).toEqual([
      { seq: 1, status: 'QUEUED' },
      { seq: 2, status: 'QUEUED' },
    ]);
  });

  it.each(['QUEUED', 'SCHEDULED'] as const)('refuses to retry a %s task', async (status) => {
    const task = await c.submit({
      type: 'ORG_CHECK',
      org: 'uat',
      ...(status === 'SCHEDULED' ? { runAt: new Date(Date.now() + 3_600_000).toISOString() } : {}),
    });
    const before = await c.row(task.id);
    const result = await c.retry(task.id);
    expect(result).toMatchObject({ __typename: 'InvalidStateError', code: 'TASK_NOT_RETRYABLE', currentStatus: status });
    const after = await c.row(task.id);
    expect(after.jobId).toBe(before.jobId);
    expect(after.lastEventSeq).toBe(1);
  });

  it('refuses an APPLICATION token (it may cancel but not retry)', async () => {
    const task = await c.submit({ type: 'ORG_CHECK', org: 'uat' });
    const app = await api.token('APPLICATION');
    expect((await c.cancel(task.id, app)).__typename).toBe('CancelTaskSuccess');
    const res = await api.gql(RETRY, { id: task.id }, app);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await c.row(task.id)).status).toBe('CANCELLED');
  });

  it('answers TASK_NOT_FOUND for an unknown task', async () => {
    expect(await c.retry(randomUUID())).toMatchObject({ __typename: 'NotFoundError', code: 'TASK_NOT_FOUND' });
  });
});

describe('concurrency', () => {
  let art: Record<'k1' | 'k2', string>;
  beforeAll(async () => {
    art = await uploadArtifacts(api, ['k1', 'k2']);
  });

  it('lets exactly one of 20 concurrent cancels win, with a gap-free event log', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['k1'] } });
    const { row } = await c.job(task.id);
    const results = await Promise.all(Array.from({ length: 20 }, () => c.cancel(task.id)));
    const winners = results.filter((r) => r.__typename === 'CancelTaskSuccess');
    const losers = results.filter((r) => r.__typename !== 'CancelTaskSuccess');
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    for (const loser of losers) {
      // Nothing runs here: every loser lost to the winning cancel.
      expect(loser).toMatchObject({ __typename: 'InvalidStateError', code: 'TASK_NOT_CANCELLABLE', currentStatus: 'CANCELLED' });
    }
    expect(await c.statusEvents(task.id)).toEqual([
      { seq: 1, status: 'QUEUED' },
      { seq: 2, status: 'CANCELLED' },
    ]);
    expect((await c.row(task.id)).lastEventSeq).toBe(2);
    expect(await api.queues.get(row.queue).getJob(row.jobId!)).toBeFalsy();
  });

  it('keeps the event log consistent under 20 concurrent cancels and retries', async () => {
    const task = await c.submit({ type: 'DEPLOY', org: 'uat', params: { artifactId: art['k2'] } });
    let cancels = 0;
    let retries = 0;
    for (let round = 0; round < 3; round += 1) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? c.cancel(task.id) : c.retry(task.id))),
      );
      for (const result of results) {
        // Every answer is a success or the expected refusal: no internal error, no constraint violation.
        expect(['CancelTaskSuccess', 'RetryTaskSuccess', 'InvalidStateError']).toContain(result.__typename);
        if (result.__typename === 'InvalidStateError') expect(['TASK_NOT_CANCELLABLE', 'TASK_NOT_RETRYABLE']).toContain(result.code);
      }
      cancels += results.filter((r) => r.__typename === 'CancelTaskSuccess').length;
      retries += results.filter((r) => r.__typename === 'RetryTaskSuccess').length;
    }
    expect(cancels).toBeGreaterThanOrEqual(1);

    const events = await c.statusEvents(task.id);
    const row = await c.row(task.id);
    // Gap-free and duplicate-free: exactly 1..lastEventSeq.
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: row.lastEventSeq }, (_, i) => i + 1));
    // A cancel only follows QUEUED and a retry only follows CANCELLED, so the statuses alternate.
    events.forEach((event, i) => expect(event.status).toBe(i % 2 === 0 ? 'QUEUED' : 'CANCELLED'));
    expect(events.filter((e) => e.status === 'CANCELLED')).toHaveLength(cancels);
    expect(events.filter((e) => e.status === 'QUEUED')).toHaveLength(retries + 1);
    expect(row.status).toBe(events.at(-1)!.status);
    // Exactly the current attempt has a job, and only while the task is QUEUED: no cancelled task is left
    // with a job a worker would pick up.
    const jobs = (await api.queues.get('NORMAL').getJobs(['prioritized', 'waiting', 'delayed'])).filter((job) => job.data.taskId === row.id);
    expect(jobs.map((job) => job.id)).toEqual(row.status === 'QUEUED' ? [row.jobId] : []);
  });
});

describe('scheduleTask and removeSchedule', () => {
  const schedule = (timezone: string, cron = '30 9 * * *') =>
    c.mutate(SCHEDULE, { input: { type: 'ORG_CHECK', org: 'uat', cron, timezone } }, 'scheduleTask') as Promise<any>;
  const remove = (id: string) => c.mutate(REMOVE_SCHEDULE, { id }, 'removeSchedule') as Promise<any>;
  const scheduleUuid = (globalId: string) => Buffer.from(globalId, 'base64').toString('utf8').slice('Schedule:'.length);

  it('accepts current IANA names, links and UTC by any of its names, and BullMQ fires them when nextRunAt says', async () => {
    // Node 20's Intl.supportedValuesOf('timeZone') lists none of these (it has Asia/Calcutta, Europe/Kiev, …).
    for (const timezone of ['Asia/Kolkata', 'Europe/Kyiv', 'Asia/Ho_Chi_Minh', 'America/Argentina/Buenos_Aires', 'Etc/UTC', 'GMT', 'US/Eastern', 'UTC']) {
      const created = await schedule(timezone);
      expect(created, timezone).toMatchObject({ __typename: 'ScheduleTaskSuccess', schedule: { cron: '30 9 * * *', timezone } });
      const id = scheduleUuid(created.schedule.id);
      const nextRunAt = Date.parse(created.schedule.nextRunAt);
      expect(nextRunAt).toBeGreaterThan(Date.now());
      expect(nextRunAt).toBeLessThanOrEqual(Date.now() + 86_400_000);
      // The job scheduler that fires the schedule reads the zone the same way: its next firing is nextRunAt.
      const scheduler = await api.queues.schedules.getJobScheduler(id);
      expect(scheduler, timezone).toMatchObject({ tz: timezone, pattern: '30 9 * * *', next: nextRunAt });
      expect((await remove(created.schedule.id)).__typename).toBe('RemoveScheduleSuccess');
    }
  });

  it('reads the pattern in the zone: 09:30 in Asia/Kolkata (UTC+05:30, no DST) is 04:00 UTC', async () => {
    const created = await schedule('Asia/Kolkata');
    expect(created.__typename).toBe('ScheduleTaskSuccess');
    const nextRunAt = new Date(created.schedule.nextRunAt);
    expect(nextRunAt.toISOString()).toMatch(/T04:00:00\.000Z$/);
    expect(nextRunAt.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000);
    const listed = await api.gql(`{ schedules(first: 10) { edges { node { id timezone nextRunAt } } } }`, {}, c.member);
    expect(listed.body.data.schedules.edges.map((e: any) => e.node)).toContainEqual({ id: created.schedule.id, timezone: 'Asia/Kolkata', nextRunAt: created.schedule.nextRunAt });
    const scheduler = await api.queues.schedules.getJobScheduler(scheduleUuid(created.schedule.id));
    expect(scheduler?.next).toBe(nextRunAt.getTime());
    await remove(created.schedule.id);
  });

  it('refuses unknown zones and names not spelled as in the time zone database, creating nothing', async () => {
    const before = await api.prisma.schedule.count();
    for (const timezone of ['Mars/Olympus_Mons', 'Etc/Unknown', '+05:30', ' UTC', '', 'asia/kolkata', 'europe/paris', 'Europe/PARIS', 'utc']) {
      const result = await schedule(timezone);
      expect(result, JSON.stringify(timezone)).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
      expect(result.fieldErrors.map((e: any) => e.path)).toEqual([['timezone']]);
    }
    // Where Intl knows the zone only the spelling is wrong, and the message gives the right one.
    expect((await schedule('europe/paris')).fieldErrors[0].message).toContain('Europe/Paris');
    expect(await api.prisma.schedule.count()).toBe(before);
  });

  it('answers SCHEDULE_NOT_FOUND to all but one of six concurrent removals, as to a later one', async () => {
    const created = await schedule('Asia/Kolkata');
    const id = scheduleUuid(created.schedule.id);
    expect(await api.queues.hasScheduler(id)).toBe(true);
    const results = await concurrently(api, c.member, Array.from({ length: 6 }, () => ({ query: REMOVE_SCHEDULE, variables: { id: created.schedule.id }, field: 'removeSchedule' })));
    const later = await remove(created.schedule.id);
    expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'SCHEDULE_NOT_FOUND' });
    expect(results.filter((r) => r.__typename === 'RemoveScheduleSuccess')).toEqual([{ __typename: 'RemoveScheduleSuccess', removed: { id } }]);
    expect(results.filter((r) => r.__typename !== 'RemoveScheduleSuccess')).toEqual(Array(5).fill(later));
    expect(await api.queues.hasScheduler(id)).toBe(false);
    expect(await api.prisma.schedule.findUnique({ where: { id } })).toBeNull();
  });
});

describe('submitTask with an idempotencyKey', () => {
  /** The same API and database (same queue prefix) with its Redis unreachable, as a replica whose Redis is down. */
  let cutOff: TestApi;
  /** The same client's tokens, through that replica. */
  let cutOffClient: Client;
  beforeAll(async () => {
    cutOff = await startTestApi('tasks_cut_off', { shareWith: api, redisUrl: 'redis://127.0.0.1:1' });
    for (const queue of queueNamesList) cutOff.queues.get(queue).on('error', () => {});
    cutOffClient = new Client(cutOff, c.member, c.owner);
  });
  afterAll(async () => {
    await cutOff?.close();
  });

  it('answers a repeated submit with the first one\'s task, in its current state, and creates nothing more', async () => {
    const key = randomUUID();
    const first = await c.submit({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 2, stepMs: 5 }, priority: 70, idempotencyKey: key });
    const before = await c.footprint();
    // The same request written differently: params' keys in another order, a default given as null.
    const again = await c.submitRaw({ idempotencyKey: key, params: { stepMs: 5, steps: 2 }, org: 'uat', priority: 70, type: 'DIAGNOSTIC', queue: null });
    expect(again).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { id: first.id, status: 'QUEUED', priority: 70 } });
    // Another token of the same user shares the key.
    const sameUser = await api.token('MEMBER');
    expect(await c.submitRaw({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 2, stepMs: 5 }, priority: 70, idempotencyKey: key }, sameUser)).toMatchObject({ task: { id: first.id } });
    expect(await c.footprint()).toEqual(before);
    // After a cancel the repeat answers with the cancelled task: it does not submit again.
    expect((await c.cancel(first.id)).__typename).toBe('CancelTaskSuccess');
    const cancelled = await c.footprint();
    expect(await c.submitRaw({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 2, stepMs: 5 }, priority: 70, idempotencyKey: key })).toMatchObject({ task: { id: first.id, status: 'CANCELLED' } });
    expect(await c.footprint()).toEqual(cancelled);
  });

  it('answers a repeat before checking the request again: the org it named may be gone since', async () => {
    await c.registerOrg('idem-gone');
    const input = { type: 'ORG_CHECK', org: 'idem-gone', idempotencyKey: randomUUID() };
    const first = await c.submit(input);
    expect((await c.cancel(first.id)).__typename).toBe('CancelTaskSuccess');
    const removed = await api.gql(`mutation { removeOrg(alias: "idem-gone") { __typename } }`, {}, c.owner);
    expect(removed.body.data.removeOrg.__typename).toBe('RemoveOrgSuccess');
    expect(await c.submitRaw(input)).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { id: first.id, status: 'CANCELLED', org: null } });
  });

  it('refuses the key with another request (IDEMPOTENCY_KEY_REUSED), naming the task, and creates nothing', async () => {
    const key = randomUUID();
    const first = await c.submit({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 1 }, idempotencyKey: key });
    const before = await c.footprint();
    for (const changed of [{ params: { steps: 2 } }, { priority: 51 }, { type: 'ORG_CHECK', params: {} }, { runAt: new Date(Date.now() + 3_600_000).toISOString() }]) {
      const result = await c.submitRaw({ type: 'DIAGNOSTIC', org: 'uat', params: { steps: 1 }, idempotencyKey: key, ...changed });
      expect(result, JSON.stringify(changed)).toMatchObject({ __typename: 'ConflictError', code: 'IDEMPOTENCY_KEY_REUSED' });
      expect(result.message).toContain(rawId(first.id));
    }
    expect(await c.footprint()).toEqual(before);
  });

  it('keeps each user\'s keys apart: another user\'s submit with the same key creates its own task', async () => {
    const key = randomUUID();
    const mine = await c.submit({ type: 'ORG_CHECK', org: 'uat', idempotencyKey: key });
    const theirs = await c.submitRaw({ type: 'ORG_CHECK', org: 'uat', priority: 10, idempotencyKey: key }, c.owner);
    expect(theirs.__typename).toBe('SubmitTaskSuccess');
    expect(theirs.task!.id).not.toBe(mine.id);
  });

  it('creates one task for concurrent submits with one key, and answers each with it', async () => {
    const key = randomUUID();
    const before = await c.footprint();
    const results = await concurrently(api, c.member, Array.from({ length: 6 }, () => ({ query: SUBMIT, variables: { input: { type: 'RETRIEVE', org: 'uat', params: { members: [{ type: 'ApexClass', members: ['*'] }] }, idempotencyKey: key } }, field: 'submitTask' })));
    expect(results.map((r) => r.__typename)).toEqual(Array(6).fill('SubmitTaskSuccess'));
    expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
    const after = await c.footprint();
    expect(after.tasks - before.tasks).toBe(1);
    expect(after.events - before.events).toBe(1);
    const jobs = (counts: Record<string, number> | undefined) => Object.values(counts ?? {}).reduce((sum, n) => sum + n, 0);
    expect(jobs(after.jobs.BATCH) - jobs(before.jobs.BATCH)).toBe(1);
  });

  it('refuses keys that are empty, longer than 255 characters or hold control characters, creating nothing', async () => {
    const before = await c.footprint();
    for (const key of ['', 'x'.repeat(256), 'line\nbreak', 'tab\there', 'bell\u0007']) {
      const result = await c.submitRaw({ type: 'ORG_CHECK', org: 'uat', idempotencyKey: key });
      expect(result, JSON.stringify(key)).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
      expect(result.fieldErrors!.map((e) => e.path)).toEqual([['idempotencyKey']]);
    }
    expect(await c.footprint()).toEqual(before);
    expect((await c.submitRaw({ type: 'ORG_CHECK', org: 'uat', idempotencyKey: `deploy ${'é'.repeat(200)} ✓` })).__typename).toBe('SubmitTaskSuccess');
  });

  it('queues the task a submit could not (Redis down) when the submit is repeated with its key', async () => {
    const input = { type: 'ORG_CHECK', org: 'uat', idempotencyKey: randomUUID() };
    const failed = await cutOffClient.submitRaw(input);
    expect(failed).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    const row = await api.prisma.task.findFirstOrThrow({ where: { idempotencyKey: input.idempotencyKey } });
    expect(row).toMatchObject({ status: 'FAILED', errorCode: 'QUEUE_UNAVAILABLE', attempts: 0 });
    expect(failed.message).toContain(row.id); // the caller can find the task it could not queue
    // Repeated while Redis is still unreachable: refused again, the same task, nothing written.
    const again = await cutOffClient.submitRaw(input);
    expect(again).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    expect(again.message).toContain(row.id);
    expect(await api.prisma.task.count({ where: { idempotencyKey: input.idempotencyKey } })).toBe(1);
    expect((await api.prisma.task.findUniqueOrThrow({ where: { id: row.id } })).lastEventSeq).toBe(row.lastEventSeq);
    // Repeated through a replica whose Redis works: the same task, now queued with a job.
    const globalId = Buffer.from(`Task:${row.id}`).toString('base64');
    expect(await c.submitRaw(input)).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { id: globalId, status: 'QUEUED', error: null } });
    const { job } = await c.job(globalId);
    expect(job?.data).toMatchObject({ taskId: row.id });
    // A further repeat changes nothing.
    expect(await c.submitRaw(input)).toMatchObject({ task: { id: globalId, status: 'QUEUED' } });
    expect((await c.statusEvents(globalId)).map((e) => e.status)).toEqual(['QUEUED', 'FAILED', 'QUEUED']);
    expect((await c.events(globalId)).at(-1)!.payload).toEqual({ status: 'QUEUED', resubmittedBy: 'member-user/member-1' });
    // Once queued, the task is the caller's to retry: a retry that Redis refused in turn (FAILED with
    // QUEUE_UNAVAILABLE again) is not run again by a repeat of the submit.
    expect((await c.cancel(globalId)).__typename).toBe('CancelTaskSuccess');
    expect(await cutOffClient.retry(globalId)).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    expect(await c.submitRaw(input)).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { id: globalId, status: 'FAILED', error: { code: 'QUEUE_UNAVAILABLE' } } });
    expect((await c.statusEvents(globalId)).map((e) => e.status)).toEqual(['QUEUED', 'FAILED', 'QUEUED', 'CANCELLED', 'QUEUED', 'FAILED']);
  });

  it('keeps the runAt of a submit that could not be queued: its repeat schedules it for then', async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const input = { type: 'ORG_CHECK', org: 'uat', runAt: runAt.toISOString(), idempotencyKey: randomUUID() };
    expect(await cutOffClient.submitRaw(input)).toMatchObject({ __typename: 'UnavailableError' });
    const repeated = await c.submitRaw(input);
    expect(repeated).toMatchObject({ __typename: 'SubmitTaskSuccess', task: { status: 'SCHEDULED', runAt: runAt.toISOString() } });
    const { job } = await c.job(repeated.task!.id);
    expect(await job!.getState()).toBe('delayed');
    expect(job!.opts.delay).toBeGreaterThan(3_500_000);
  });
});

describe('with Redis down', () => {
  let d: Client;
  /** Artifacts in the Redis-down API's own database. */
  let downArt: Record<'d1', string>;

  beforeAll(async () => {
    d = await Client.start(down, ['uat']);
    downArt = await uploadArtifacts(down, ['d1']);
  });

  it('answers QUEUE_UNAVAILABLE quickly and records the task as FAILED', async () => {
    const started = Date.now();
    const result = await d.submitRaw({ type: 'ORG_CHECK', org: 'uat' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });

    const rows = await down.prisma.task.findMany();
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.status).toBe('FAILED');
    expect(row.errorCode).toBe('QUEUE_UNAVAILABLE');
    expect(row.finishedAt).not.toBeNull();
    // With no notification subscriber nothing is left for later (see webhooks.test.ts for a task that had some).
    expect(row.notificationsPending).toBe(false);

    const globalId = Buffer.from(`Task:${row.id}`).toString('base64');
    expect(await d.task(globalId)).toMatchObject({ status: 'FAILED', error: { code: 'QUEUE_UNAVAILABLE' } });
    expect(await d.statusEvents(globalId)).toEqual([
      { seq: 1, status: 'QUEUED' },
      { seq: 2, status: 'FAILED' },
    ]);
    const listed = await d.list({ filter: { status: ['FAILED'] }, first: 10 });
    expect(listed.ids).toEqual([globalId]);
  });

  it('answers QUEUE_UNAVAILABLE to a retry too, and the task stays FAILED', async () => {
    expect((await d.submitRaw({ type: 'DEPLOY', org: 'uat', params: { artifactId: downArt['d1'] } })).code).toBe('QUEUE_UNAVAILABLE');
    const row = await down.prisma.task.findFirstOrThrow({ where: { type: 'DEPLOY' } });
    expect(row.status).toBe('FAILED');
    const globalId = Buffer.from(`Task:${row.id}`).toString('base64');
    const started = Date.now();
    const result = await d.retry(globalId);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(result).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    expect(await d.task(globalId)).toMatchObject({ status: 'FAILED', error: { code: 'QUEUE_UNAVAILABLE' } });
    expect((await d.statusEvents(globalId)).map((e) => e.status)).toEqual(['QUEUED', 'FAILED', 'QUEUED', 'FAILED']);
  });

  it('answers QUEUE_UNAVAILABLE to scheduleTask and keeps neither the schedule nor its audit entry', async () => {
    const [schedules, entries] = [await down.prisma.schedule.count(), await down.prisma.auditEntry.count({ where: { action: 'schedule.create' } })];
    const result = await d.mutate(SCHEDULE, { input: { type: 'ORG_CHECK', org: 'uat', cron: '0 5 * * *' } }, 'scheduleTask');
    expect(result).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    expect(await down.prisma.schedule.count()).toBe(schedules);
    expect(await down.prisma.auditEntry.count({ where: { action: 'schedule.create' } })).toBe(entries);
  });

  it('answers QUEUE_UNAVAILABLE to removeSchedule and keeps the schedule', async () => {
    // scheduleTask cannot create one without Redis: write it as scheduleTask would have.
    const org = await down.prisma.org.findUniqueOrThrow({ where: { alias: 'uat' } });
    const row = await down.prisma.schedule.create({
      data: { type: 'ORG_CHECK', orgId: org.id, input: {}, cron: '0 * * * *', timezone: 'UTC', queue: 'CRITICAL', priority: 50, maxAttempts: 3, backoffMs: 1000, createdBy: 'test' },
    });
    const result = await d.mutate(REMOVE_SCHEDULE, { id: Buffer.from(`Schedule:${row.id}`).toString('base64') }, 'removeSchedule');
    expect(result).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
    expect(await down.prisma.schedule.findUnique({ where: { id: row.id } })).not.toBeNull();
  });

  it('still validates before touching the queue', async () => {
    const before = await down.prisma.task.count();
    const result = await d.submitRaw({ type: 'ORG_CHECK', org: 'uat', priority: 101 });
    expect(result).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(await down.prisma.task.count()).toBe(before);
  });
});
