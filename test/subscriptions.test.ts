// Live updates end to end: two API replicas on one Postgres schema and Redis prefix, one real worker forking
// real children (from dist/), graphql-ws clients on real sockets. Nothing is mocked.
import { once } from 'node:events';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusEvent } from '../src/domain/tasks/task-journal.js';
import { allTaskEventsChannel, taskEventChannel } from '../src/events/task-event-bus.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { channelListeners } from './support/net.js';
import { FINAL_STATUSES, startTestWorker, waitFor, waitForTaskStatus, type TestWorker } from './support/worker-harness.js';
import { collect, rawClient, wsClient, type Collected } from './support/ws-client.js';

let apiA: TestApi;
let apiB: TestApi;
let worker: TestWorker;
let workerClosed = false;
let owner: string;
let viewer: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const port = (api: TestApi) => Number(new URL(api.url).port);
const replicaId = (api: TestApi) => `${hostname()}:${process.pid}:${port(api)}`;

beforeAll(async () => {
  apiA = await startTestApi('subs');
  // The bulk tests select each event's payload 100 times over (aliases): above the default operation limits.
  apiB = await startTestApi('subs_b', { shareWith: apiA, app: { operationLimits: bulkLimits } });
  worker = await startTestWorker(apiA);
  owner = await apiA.token('OWNER');
  viewer = await apiA.token('VIEWER');
  for (const alias of ['dev', 'other']) {
    const res = await apiA.gql(
      `mutation($alias: String!) { registerOrg(input: { alias: $alias, kind: DEVELOPER, credentials: { instanceUrl: "https://${alias}.my.salesforce.com", refreshToken: "5Aep861subs${alias}" } }) { __typename } }`,
      { alias },
      owner,
    );
    expect(res.body.data?.registerOrg.__typename).toBe('RegisterOrgSuccess');
  }
});

afterAll(async () => {
  if (worker && !workerClosed) await worker.close();
  await apiB?.close();
  await apiA?.close();
});

const submitMutation = `mutation($p: JSON, $org: String!) { submitTask(input: { type: DIAGNOSTIC, org: $org, params: $p }) { __typename ... on SubmitTaskSuccess { task { id } } } }`;
const eventsSubscription = `subscription($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { seq cursor kind payload createdAt } }`;
const updatedSubscription = `subscription($f: TaskFilter) { taskUpdated(filter: $f) { id status progress orgAlias type queue } }`;

interface Ev {
  seq: number;
  cursor: string;
  kind: string;
  payload: any;
  createdAt: string;
}

async function submit(params: Record<string, unknown>, org = 'dev', api: TestApi = apiA): Promise<string> {
  const res = await api.gql(submitMutation, { p: params, org }, owner);
  const id = res.body.data?.submitTask?.task?.id;
  if (!id) throw new Error(`submitTask failed: ${JSON.stringify(res.body)}`);
  return id as string;
}

async function taskRow(id: string) {
  return apiA.prisma.task.findUniqueOrThrow({ where: { id: decodeGlobalID(id).id } });
}

const finished = (id: string, timeoutMs = 15_000) => waitForTaskStatus(taskRow, id, FINAL_STATUSES, timeoutMs);

const evs = (sub: Collected): Ev[] => sub.events.map((e: any) => e.taskEvents as Ev);
const codes = (sub: Collected): unknown[] => sub.errors.flat().map((e: any) => e?.extensions?.code ?? e?.message ?? String(e));
const bulkLimits = { maxAliases: 500, maxFields: 5000, maxTokens: 20_000 };

/** A taskEvents subscription with every event's payload `copies` times over (aliases `${prefix}1`…), for bulk. */
const fatEvents = (copies: number, prefix = 'p') =>
  `subscription($id: ID!) { taskEvents(taskId: $id) { seq ${range(copies).map((i) => `${prefix}${i}: payload`).join(' ')} } }`;

/**
 * A task whose log has `n` events, written straight to the database (far faster than a worker): the last is
 * a final STATUS (CANCELLED); with `final` false the task stays SCHEDULED (an hour away) with events 1..n-1.
 */
async function longLog(n: number, final = true): Promise<string> {
  const res = await apiA.gql(
    `mutation($runAt: DateTime) { submitTask(input: { type: DIAGNOSTIC, org: "dev", runAt: $runAt }) { ... on SubmitTaskSuccess { task { id } } } }`,
    { runAt: new Date(Date.now() + 3_600_000).toISOString() },
    owner,
  );
  const id: string = res.body.data.submitTask.task.id;
  const taskId = decodeGlobalID(id).id;
  await apiA.prisma.taskEvent.createMany({
    data: [
      ...range(n - 2).map((i) => ({ taskId, seq: i + 1, kind: 'LOG' as const, payload: { level: 'info', message: `line ${i + 1} ${'x'.repeat(40)}` } })),
      ...(final ? [{ taskId, seq: n, kind: 'STATUS' as const, payload: { status: 'CANCELLED' } }] : []),
    ],
  });
  if (final) await apiA.prisma.task.update({ where: { id: taskId }, data: { status: 'CANCELLED', lastEventSeq: n, finishedAt: new Date() } });
  else await apiA.prisma.task.update({ where: { id: taskId }, data: { lastEventSeq: n - 1 } });
  return id;
}

/** Appends `count` LOG events to a task in one transaction (announced together: a burst), as a worker would. */
async function appendLogs(id: string, count: number, label: string): Promise<void> {
  const events = range(count).map((i) => ({ kind: 'LOG' as const, payload: { level: 'info', message: `${label} ${i} ${'x'.repeat(40)}` } }));
  await apiA.services.journal.change(decodeGlobalID(id).id, null, {}, events);
}

/** Ends a task with a final STATUS event, announced live. */
async function cancelNow(id: string): Promise<void> {
  await apiA.services.journal.change(decodeGlobalID(id).id, null, { status: 'CANCELLED', finishedAt: new Date() }, [statusEvent('CANCELLED')]);
}

describe('taskEvents across replicas', () => {
  it('delivers a running task\'s events live, in order and complete, to subscribers on both replicas', async () => {
    const id = await submit({ steps: 8, stepMs: 100 });
    const onA = wsClient(apiA.url, owner);
    const onB = wsClient(apiB.url, viewer);
    const subA = collect(onA, eventsSubscription, { id });
    const subB = collect(onB, eventsSubscription, { id });
    const doneAt = await Promise.all([subA.done.then(() => Date.now()), subB.done.then(() => Date.now())]);
    await Promise.all([onA.dispose(), onB.dispose()]);

    const row = await taskRow(id);
    expect(row.status).toBe('SUCCEEDED');
    for (const [index, sub] of [subA, subB].entries()) {
      expect(sub.errors).toEqual([]);
      expect(sub.completed).toBe(true);
      const events = evs(sub);
      expect(events.map((e) => e.seq)).toEqual(range(row.lastEventSeq));
      expect(events.filter((e) => e.kind === 'PROGRESS')).toHaveLength(8);
      for (const event of events) expect(event.cursor).toMatch(/^\S+$/);
      expect(new Set(events.map((e) => e.cursor)).size).toBe(events.length);
      expect(events.at(-1)).toMatchObject({ kind: 'STATUS', payload: { status: 'SUCCEEDED' } });
      // Live, not found later by the 5 s quiet re-read of the log.
      expect(doneAt[index]! - Date.parse(events.at(-1)!.createdAt)).toBeLessThan(2000);
    }
    expect(evs(subB)).toEqual(evs(subA));
  });

  it('resumes after a disconnect from the last cursor, on the other replica, with no gap and no duplicate', async () => {
    const id = await submit({ steps: 12, stepMs: 120 });
    const first = wsClient(apiA.url, owner);
    const before = collect(first, eventsSubscription, { id });
    await waitFor(async () => before.events.length >= 3, 10_000, 'three events');
    before.dispose();
    const seen = evs(before).slice();
    await first.dispose();
    const last = seen.at(-1)!;
    // Events happen while nobody listens.
    const atResume = await waitFor(async () => {
      const row = await taskRow(id);
      return row.lastEventSeq >= last.seq + 2 ? row : null;
    }, 10_000, 'events to be missed');
    expect(atResume.status).toBe('RUNNING'); // so the resumed stream crosses from replay to live

    const second = wsClient(apiB.url, owner);
    const after = collect(second, eventsSubscription, { id, after: last.cursor });
    await after.done;
    await second.dispose();
    expect(after.errors).toEqual([]);
    expect(after.completed).toBe(true);
    const row = await taskRow(id);
    expect(evs(after)[0]?.seq).toBe(last.seq + 1);
    expect([...seen, ...evs(after)].map((e) => e.seq)).toEqual(range(row.lastEventSeq));
    expect(evs(after).at(-1)?.payload.status).toBe('SUCCEEDED');
  });

  it('replays a task that finished before subscribing and completes; after the last cursor it completes with nothing', async () => {
    const id = await submit({ steps: 3, stepMs: 10 });
    const row = await finished(id);
    const client = wsClient(apiB.url, viewer);
    const started = Date.now();
    const all = collect(client, eventsSubscription, { id });
    await all.done;
    expect(all.errors).toEqual([]);
    expect(all.completed).toBe(true);
    expect(evs(all).map((e) => e.seq)).toEqual(range(row.lastEventSeq));
    expect(evs(all).at(-1)?.payload.status).toBe('SUCCEEDED');

    const middle = collect(client, eventsSubscription, { id, after: evs(all)[1]!.cursor });
    await middle.done;
    expect(middle.completed).toBe(true);
    expect(evs(middle).map((e) => e.seq)).toEqual(range(row.lastEventSeq).slice(2));

    const nothing = collect(client, eventsSubscription, { id, after: evs(all).at(-1)!.cursor });
    await nothing.done;
    expect(nothing.errors).toEqual([]);
    expect(nothing.completed).toBe(true);
    expect(nothing.events).toEqual([]);
    expect(Date.now() - started).toBeLessThan(3000); // completed at once, not after a quiet re-check
    await client.dispose();
  });

  it('does not cut short the stream of subscribers sharing an execution with one that stopped reading', async () => {
    const n = 2000;
    const id = await longLog(n);
    const query = fatEvents(100); // ~8 KB per event: the paused socket's kernel buffers fill after a few hundred
    const { ws } = await rawClient(apiB, viewer);
    ws.pause();
    ws.send(JSON.stringify({ id: 'a', type: 'subscribe', payload: { query, variables: { id } } }));
    await waitFor(async () => apiB.app.subscriptionStats().sharedExecutions === 1, 5000, 'the paused client\'s execution');
    const reader = wsClient(apiB.url, viewer);
    const sub = collect(reader, query, { id });
    await sub.done;
    await reader.dispose();
    ws.terminate();
    expect(sub.errors).toEqual([]);
    expect(sub.completed).toBe(true);
    expect(sub.events.map((e: any) => e.taskEvents.seq)).toEqual(range(n));
  });

  it('shares one execution among the same subscription written differently: each socket gets every event once, in order, and one completing leaves the other alone', async () => {
    const id = await longLog(3, false); // events 1 and 2; the task stays open
    const one = await rawClient(apiB, viewer);
    const two = await rawClient(apiB, await apiA.token('VIEWER')); // another token with the same role
    const executions = apiB.app.subscriptionStats().sharedExecutions;
    // The same operation with other whitespace, commas and a comment, and its variables in another order.
    const reformatted = `# the same\nsubscription ( $id : ID! , $after : String ) {\n  taskEvents(taskId: $id, after: $after) {\n    seq, cursor, kind, payload, createdAt\n  }\n}`;
    one.ws.send(JSON.stringify({ id: 'a', type: 'subscribe', payload: { query: eventsSubscription, variables: { id, after: '1' } } }));
    two.ws.send(JSON.stringify({ id: 'b', type: 'subscribe', payload: { query: reformatted, variables: { after: '1', id } } }));
    const seqs = (client: { messages: any[] }, sid: string) => client.messages.filter((m) => m.id === sid && m.type === 'next').map((m) => m.payload.data.taskEvents.seq);
    await waitFor(async () => seqs(one, 'a').length === 1 && seqs(two, 'b').length === 1, 5000, 'both to replay event 2');
    expect(apiB.app.subscriptionStats().sharedExecutions).toBe(executions + 1);
    // Protocol frames as graphql-ws sends them.
    expect(one.messages.find((m) => m.type === 'next')).toEqual({
      id: 'a',
      type: 'next',
      payload: { data: { taskEvents: { seq: 2, cursor: '2', kind: 'LOG', payload: { level: 'info', message: expect.stringMatching(/^line 2 /) }, createdAt: expect.any(String) } } },
    });

    // Live events, one at a time and in bursts.
    for (const k of [1, 5, 1, 3]) await appendLogs(id, k, 'live');
    await waitFor(async () => seqs(one, 'a').length === 11 && seqs(two, 'b').length === 11, 5000, 'the live events on both sockets');
    expect(seqs(one, 'a')).toEqual(range(12).slice(1));
    expect(seqs(two, 'b')).toEqual(range(12).slice(1));

    // One completes: the other keeps receiving, the first nothing more for that id.
    one.ws.send(JSON.stringify({ id: 'a', type: 'complete' }));
    await sleep(100);
    await appendLogs(id, 2, 'after');
    await waitFor(async () => seqs(two, 'b').length === 13, 5000, 'the events after the complete');
    await sleep(100);
    expect(seqs(one, 'a')).toEqual(range(12).slice(1));
    expect(apiB.app.subscriptionStats().sharedExecutions).toBe(executions + 1);

    // The same socket subscribes again under a new id: it joins the running execution and catches up.
    one.ws.send(JSON.stringify({ id: 'c', type: 'subscribe', payload: { query: eventsSubscription, variables: { after: '1', id } } }));
    await waitFor(async () => seqs(one, 'c').length === 13, 5000, 'the joiner to catch up');
    expect(apiB.app.subscriptionStats().sharedExecutions).toBe(executions + 1);

    // The final status completes both remaining subscriptions, after their last event.
    await cancelNow(id);
    await waitFor(async () => [one, two].every((c) => c.messages.at(-1)?.type === 'complete'), 5000, 'complete on both sockets');
    for (const [client, sid] of [[one, 'c'], [two, 'b']] as const) {
      expect(seqs(client, sid)).toEqual(range(15).slice(1));
      expect(client.messages.filter((m) => m.id === sid).at(-2).payload.data.taskEvents.payload).toEqual({ status: 'CANCELLED' });
      expect(client.messages.at(-1)).toEqual({ id: sid, type: 'complete' });
    }
    expect(one.messages.filter((m) => m.type === 'complete').map((m) => m.id)).toEqual(['c']); // none for the id it completed itself
    expect(one.messages.concat(two.messages).filter((m) => m.type === 'error')).toEqual([]);
    await waitFor(async () => apiB.app.subscriptionStats().sharedExecutions === executions, 5000, 'the execution to end');
    one.ws.terminate();
    two.ws.terminate();
  });

  it('replays to a joiner also when the subscription is selected through a fragment, or by operationName', async () => {
    const id = await longLog(3, false); // events 1 and 2; the task stays open
    const documents = {
      fragment: `subscription S($id: ID!) { ...Events } fragment Events on Subscription { taskEvents(taskId: $id) { seq } }`,
      named: `query Q { viewer { role } } subscription S($id: ID!) { taskEvents(taskId: $id) { seq } }`,
    };
    const first = await rawClient(apiB, viewer);
    const joiner = await rawClient(apiB, viewer);
    const seqs = (client: { messages: any[] }, sid: string) => client.messages.filter((m) => m.id === sid && m.type === 'next').map((m) => m.payload.data.taskEvents.seq);
    for (const [name, query] of Object.entries(documents)) {
      const executions = apiB.app.subscriptionStats().sharedExecutions;
      first.ws.send(JSON.stringify({ id: name, type: 'subscribe', payload: { query, operationName: 'S', variables: { id } } }));
      await waitFor(async () => seqs(first, name).length === 2, 5000, `${name}: the first subscriber's replay`);
      joiner.ws.send(JSON.stringify({ id: name, type: 'subscribe', payload: { query, operationName: 'S', variables: { id } } }));
      await waitFor(async () => seqs(joiner, name).length === 2, 5000, `${name}: the joiner's replay`);
      expect(seqs(joiner, name)).toEqual([1, 2]);
      expect(apiB.app.subscriptionStats().sharedExecutions).toBe(executions + 1); // it joined, it did not start its own
    }
    expect(first.messages.concat(joiner.messages).filter((m) => m.type === 'error')).toEqual([]);
    first.ws.terminate();
    joiner.ws.terminate();
  });

  it('lets a late subscriber join a shared replay of more than 1024 events and get all of them', async () => {
    const n = 1500;
    const id = await longLog(n, false); // not final: the shared execution stays open, waiting for live events
    const first = wsClient(apiB.url, viewer);
    const early = collect(first, eventsSubscription, { id });
    await waitFor(async () => early.events.length >= n - 1, 10_000, 'the first subscriber to catch up');
    const second = wsClient(apiB.url, viewer);
    const late = collect(second, eventsSubscription, { id });
    await waitFor(async () => late.events.length >= n - 1 || late.errors.length > 0, 10_000, 'the late subscriber to catch up');
    await sleep(100);
    expect(apiB.app.subscriptionStats().sharedExecutions).toBe(1);
    expect(late.errors).toEqual([]);
    expect(evs(late).map((e) => e.seq)).toEqual(range(n - 1));
    expect(evs(early).map((e) => e.seq)).toEqual(range(n - 1));
    await Promise.all([first.dispose(), second.dispose()]);
  });
});

describe('taskUpdated', () => {
  it('delivers worker-caused updates matching the filter on replica B, and none for other tasks', async () => {
    const client = wsClient(apiB.url, viewer);
    const devSucceeded = collect(client, updatedSubscription, { f: { org: 'dev', status: ['SUCCEEDED'] } });
    const devRunning = collect(client, updatedSubscription, { f: { org: 'dev', status: ['RUNNING'], type: ['DIAGNOSTIC'] } });
    const other = collect(client, updatedSubscription, { f: { org: 'other' } });
    const batch = collect(client, updatedSubscription, { f: { queue: ['BATCH'] } });
    const orgChecks = collect(client, updatedSubscription, { f: { type: ['ORG_CHECK'], source: ['API'] } });
    await sleep(300); // the subscriptions are live-only: let them reach Redis first

    const x = await submit({ steps: 4, stepMs: 60 }, 'dev');
    const y = await submit({ steps: 2, stepMs: 60 }, 'other');
    await waitFor(
      async () =>
        devSucceeded.events.some((e: any) => e.taskUpdated.id === x) && other.events.some((e: any) => e.taskUpdated.id === y && e.taskUpdated.status === 'SUCCEEDED'),
      15_000,
      'both tasks to succeed',
    );
    await sleep(300);
    for (const sub of [devSucceeded, devRunning, other, batch, orgChecks]) sub.dispose();
    await client.dispose();

    for (const sub of [devSucceeded, devRunning, other, batch, orgChecks]) expect(sub.errors).toEqual([]);
    const tasks = (sub: Collected) => sub.events.map((e: any) => e.taskUpdated);
    expect(tasks(devSucceeded).length).toBeGreaterThanOrEqual(1);
    for (const task of tasks(devSucceeded)) expect(task).toMatchObject({ id: x, status: 'SUCCEEDED', orgAlias: 'dev', progress: 100 });
    // RUNNING and every PROGRESS change (4 steps) of x, all written by the worker.
    expect(tasks(devRunning).length).toBeGreaterThanOrEqual(5);
    for (const task of tasks(devRunning)) expect(task).toMatchObject({ id: x, orgAlias: 'dev', type: 'DIAGNOSTIC' });
    expect(tasks(other).length).toBeGreaterThanOrEqual(3);
    for (const task of tasks(other)) expect(task).toMatchObject({ id: y, orgAlias: 'other' });
    expect(tasks(other).map((t: any) => t.status)).toContain('SUCCEEDED');
    expect(tasks(batch)).toEqual([]);
    expect(tasks(orgChecks)).toEqual([]);
  });
});

describe('listeners of subscriptions that have ended', () => {
  /** How many of the replicas' feed connections listen on a channel (PUBSUB NUMSUB). */
  const listeners = (channel: string) => channelListeners(apiA.redis, channel);

  it('taskUpdated stops listening to task events as soon as its subscriber leaves, even with a filter nothing has matched', async () => {
    // It used to be an async generator waiting in `for await` for a matching event: leaving ended it only when the
    // next match came (never, for status: []), and until then it went on taking every task event of the replica.
    // An API of its own, so that nothing else on its feed connection listens to that channel.
    const alone = await startTestApi('sub_listeners');
    try {
      const channel = allTaskEventsChannel(alone.queuePrefix);
      expect(await listeners(channel)).toBe(0);
      const client = wsClient(alone.url, await alone.token('VIEWER'));
      const nothing = collect(client, updatedSubscription, { f: { status: [] } });
      await waitFor(async () => (await listeners(channel)) === 1, 5000, 'the subscription to listen');
      nothing.dispose();
      await waitFor(async () => (await listeners(channel)) === 0, 5000, 'the subscription to stop listening');
      await client.dispose();
      expect(nothing.events).toEqual([]);
    } finally {
      await alone.close();
    }
  });

  /** Clients that POST a subscription over SSE and go at once, before the server has looked up the token (and the task). */
  async function leaveAtOnce(api: TestApi, token: string, query: string, variables: Record<string, unknown>, clients = 10): Promise<void> {
    const body = JSON.stringify({ query, variables });
    const request = [
      'POST /graphql HTTP/1.1',
      `Host: 127.0.0.1:${port(api)}`,
      'Content-Type: application/json',
      'Accept: text/event-stream',
      `Authorization: Bearer ${token}`,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
    for (let i = 0; i < clients; i += 1) {
      const socket = connect(port(api), '127.0.0.1');
      await once(socket, 'connect');
      socket.end(request);
      socket.destroy();
    }
    await sleep(1_000);
  }

  it('taskEvents and taskUpdated over HTTP hold no listener when their client left before the response was sent', async () => {
    // Both used to subscribe to their channel when the subscription was made, and only a stream that is read (or
    // cancelled) unsubscribes: the server does neither with the body of a response whose client has gone.
    const id = await submit({ steps: 1, stepMs: 0 });
    await finished(id);
    await leaveAtOnce(apiA, viewer, eventsSubscription, { id });
    expect(await listeners(taskEventChannel(apiA.queuePrefix, decodeGlobalID(id).id))).toBe(0);
    const alone = await startTestApi('sub_left');
    try {
      const token = await alone.token('VIEWER');
      await leaveAtOnce(alone, token, updatedSubscription, { f: {} });
      expect(await listeners(allTaskEventsChannel(alone.queuePrefix))).toBe(0);
      // And one that stays is subscribed (the request itself is right).
      const client = wsClient(alone.url, token);
      const staying = collect(client, updatedSubscription, { f: {} });
      await waitFor(async () => (await listeners(allTaskEventsChannel(alone.queuePrefix))) === 1, 5000, 'the staying subscription to listen');
      staying.dispose();
      await client.dispose();
    } finally {
      await alone.close();
    }
    // The task's events reach a client that stays.
    const client = wsClient(apiA.url, viewer);
    const sub = collect(client, eventsSubscription, { id });
    await sub.done;
    await client.dispose();
    expect(sub.completed).toBe(true);
    expect(evs(sub).at(-1)).toMatchObject({ kind: 'STATUS', payload: { status: 'SUCCEEDED' } });
  });
});

describe('authentication and authorisation over the socket', () => {
  let done: string;
  beforeAll(async () => {
    done = await submit({ steps: 1, stepMs: 0 });
    await finished(done);
  });

  it('closes connections without a token or with a bad token with 4403', async () => {
    for (const token of [null, 'syt_' + 'x'.repeat(43), 'not-a-token']) {
      const client = wsClient(apiB.url, token);
      const sub = collect(client, eventsSubscription, { id: done });
      await sub.done;
      await waitFor(async () => client.closeCodes.length > 0, 5000, 'close');
      expect(client.closeCodes).toEqual([4403]);
      expect(sub.events).toEqual([]);
      expect(sub.completed).toBe(false);
    }
  });

  it('lets a VIEWER subscribe but not run a mutation over the socket (FORBIDDEN); a MEMBER may', async () => {
    const countBefore = await apiA.prisma.task.count();
    const viewerClient = wsClient(apiB.url, viewer);
    const sub = collect(viewerClient, eventsSubscription, { id: done });
    await sub.done;
    expect(sub.completed).toBe(true);
    expect(sub.events.length).toBeGreaterThan(0);

    const refused = collect(viewerClient, submitMutation, { p: { steps: 1, stepMs: 0 }, org: 'dev' });
    await refused.done;
    expect(codes(refused)).toEqual(['FORBIDDEN']);
    expect(refused.events).toEqual([]); // data: null
    expect(await apiA.prisma.task.count()).toBe(countBefore);
    await viewerClient.dispose();

    const memberClient = wsClient(apiB.url, await apiA.token('MEMBER'));
    const accepted = collect(memberClient, submitMutation, { p: { steps: 1, stepMs: 0 }, org: 'dev' });
    await accepted.done;
    await memberClient.dispose();
    expect(accepted.errors).toEqual([]);
    expect(accepted.events[0].submitTask.__typename).toBe('SubmitTaskSuccess');
    await finished(accepted.events[0].submitTask.task.id);
  });

  it('refuses a new connection once its token has expired, even just after the token connected', async () => {
    const expiresAt = new Date(Date.now() + 1500);
    const expiring = await apiA.token('VIEWER', { name: 'expiring', expiresAt });
    const first = wsClient(apiB.url, expiring);
    const ping = collect(first, '{ viewer { role } }');
    await ping.done;
    expect(ping.events).toEqual([{ viewer: { role: 'VIEWER' } }]);
    await first.dispose();
    await sleep(expiresAt.getTime() - Date.now() + 50);
    const again = wsClient(apiB.url, expiring);
    await collect(again, '{ viewer { role } }').done;
    await waitFor(async () => again.closeCodes.length > 0, 5000, 'close');
    expect(again.closeCodes).toEqual([4403]);
  });

  it('closes a revoked token\'s sockets on the other replica with 4403 at once', async () => {
    const member = await apiA.token('MEMBER', { name: 'to-revoke' });
    const tokenId = (await apiA.gql('{ viewer { token { id } } }', {}, member)).body.data.viewer.token.id;
    const doomed = wsClient(apiB.url, member); // stays connected while doomedLive runs
    const bystander = wsClient(apiB.url, viewer);
    const doomedLive = collect(doomed, updatedSubscription, {});
    const bystanderLive = collect(bystander, updatedSubscription, {});
    for (const [client, role] of [[doomed, 'MEMBER'], [bystander, 'VIEWER']] as const) {
      const ping = collect(client, '{ viewer { role } }');
      await ping.done;
      expect(ping.events).toEqual([{ viewer: { role } }]);
    }

    const revokedAt = Date.now();
    const res = await apiA.gql(`mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }`, { id: tokenId }, owner);
    expect(res.body.data?.revokeApiToken.__typename).toBe('RevokeApiTokenSuccess');
    await waitFor(async () => doomed.closeCodes.length > 0, 2500, 'the revoked token\'s socket on B to close');
    expect(Date.now() - revokedAt).toBeLessThan(2500); // the announcement, not the 30 s re-check
    expect(doomed.closeCodes).toEqual([4403]);
    await doomedLive.done;
    expect(doomedLive.completed).toBe(false);

    // Other tokens' sockets stay open and working.
    await sleep(200);
    expect(bystander.closeCodes).toEqual([]);
    const ping = collect(bystander, '{ viewer { role } }');
    await ping.done;
    expect(ping.events).toEqual([{ viewer: { role: 'VIEWER' } }]);
    bystanderLive.dispose();
    await bystander.dispose();
    await doomed.dispose();

    // And the token cannot connect again, on either replica.
    for (const api of [apiA, apiB]) {
      const again = wsClient(api.url, member);
      await collect(again, '{ viewer { role } }').done;
      await waitFor(async () => again.closeCodes.length > 0, 5000, 'close');
      expect(again.closeCodes).toEqual([4403]);
    }
  });
});

describe('per-connection limits (replica C: 2 subscriptions, 16 KiB unread)', () => {
  let apiC: TestApi;

  beforeAll(async () => {
    apiC = await startTestApi('subs_c', {
      shareWith: apiA,
      subscriptionLimits: { maxSubscriptionsPerConnection: 2, maxBufferedBytes: 16 * 1024 },
      app: { operationLimits: bulkLimits },
    });
  });

  afterAll(async () => {
    await apiC?.close();
  });

  it('allows two concurrent subscriptions, refuses a third with TOO_MANY_SUBSCRIPTIONS, and allows it once one ends', async () => {
    const id = await longLog(20);
    const client = wsClient(apiC.url, viewer);
    const one = collect(client, updatedSubscription, {});
    const two = collect(client, updatedSubscription, { f: { org: 'dev' } });
    const three = collect(client, eventsSubscription, { id });
    await three.done;
    expect(three.completed).toBe(false);
    expect(codes(three)).toEqual(['TOO_MANY_SUBSCRIPTIONS']);
    expect(three.events).toEqual([]);
    await sleep(100);
    expect(one.errors).toEqual([]);
    expect(two.errors).toEqual([]);

    one.dispose();
    await sleep(100);
    const again = collect(client, eventsSubscription, { id });
    await again.done;
    expect(again.errors).toEqual([]);
    expect(again.completed).toBe(true);
    expect(evs(again).map((e) => e.seq)).toEqual(range(20));
    two.dispose();
    await client.dispose();
    expect(client.closeCodes.filter((code) => code !== 1000)).toEqual([]);
  });

  it('closes a client that stops reading with 1008', async () => {
    const n = 300;
    const id = await longLog(n);
    // ~23 KB per event: every event's payload, 300 times over. Two such subscriptions on a paused socket
    // leave more unread than the 16 KiB limit once the kernel's buffers are full.
    const fat = (prefix: string) => fatEvents(300, prefix);
    const { ws, messages, closed } = await rawClient(apiC, viewer);
    ws.pause();
    ws.send(JSON.stringify({ id: 'a', type: 'subscribe', payload: { query: fat('a'), variables: { id } } }));
    ws.send(JSON.stringify({ id: 'b', type: 'subscribe', payload: { query: fat('b'), variables: { id } } }));
    await waitFor(async () => apiC.logLines.some((line) => line.includes('client is not reading')), 15_000, 'the server to give up on the client');
    ws.resume();
    const { code, reason } = await Promise.race([closed, sleep(10_000).then(() => ({ code: -1, reason: 'not closed' }))]);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^Client too slow/);
    expect(messages.filter((m) => m.type === 'next').length).toBeLessThan(2 * n);
  });

  it('cuts off a client that stops reading from a shared execution with 1008, while the subscriber sharing it gets every event', async () => {
    const id = await longLog(3, false);
    const query = fatEvents(300); // ~23 KB per event: one frame waiting unsent is over the 16 KiB limit
    const reader = wsClient(apiC.url, viewer);
    const sub = collect(reader, query, { id });
    await waitFor(async () => sub.events.length === 2, 5000, 'the reader to replay');
    const executions = apiC.app.subscriptionStats().sharedExecutions;
    // The paused client shares the reader's subscription and has one more of its own, so two frames can wait
    // unsent on its socket: more than the 16 KiB limit.
    const { ws, messages, closed } = await rawClient(apiC, viewer);
    ws.pause();
    ws.send(JSON.stringify({ id: 'shared', type: 'subscribe', payload: { query, variables: { id } } }));
    ws.send(JSON.stringify({ id: 'own', type: 'subscribe', payload: { query: fatEvents(300, 'q'), variables: { id } } }));
    await waitFor(async () => apiC.app.subscriptionStats().sharedExecutions === executions + 1, 5000, 'the paused client\'s own execution');
    await sleep(200);
    expect(apiC.app.subscriptionStats().sharedExecutions).toBe(executions + 1); // it joined the reader's

    // Bursts of events until the kernel's buffers for the paused socket are full and the server gives up on it.
    const givingUp = () => apiC.logLines.filter((line) => line.includes('client is not reading')).length;
    const before = givingUp(); // the previous test's
    const gaveUp = () => givingUp() > before;
    let published = 2;
    for (let burst = 0; burst < 200 && !gaveUp(); burst += 1) {
      await appendLogs(id, 10, `burst ${burst}`);
      published += 10;
    }
    await waitFor(async () => gaveUp(), 15_000, 'the server to give up on the paused client');
    ws.resume();
    const { code, reason } = await Promise.race([closed, sleep(10_000).then(() => ({ code: -1, reason: 'not closed' }))]);
    expect(code).toBe(1008);
    expect(reason).toMatch(/^Client too slow/);
    expect(messages.filter((m) => m.type === 'next').length).toBeLessThan(2 * published);

    await cancelNow(id);
    await sub.done;
    await reader.dispose();
    expect(sub.errors).toEqual([]);
    expect(sub.completed).toBe(true);
    expect(sub.events.map((e: any) => e.taskEvents.seq)).toEqual(range(published + 1));
    expect(reader.closeCodes.filter((c) => c !== 1000)).toEqual([]);
  });
});

describe('resourceUtilization', () => {
  it('takes its next snapshot an interval after its reader asks for more: nothing piles up for a reader that stopped reading', { timeout: 15_000 }, async () => {
    // A reader that stops reading (a hung SSE client, once the stream's and the socket's buffers are full) used to
    // have a snapshot queued every interval regardless, and the 1,025th queued one threw in a timer callback, which
    // ended the API process. Run as the WebSocket server runs an operation (yoga.getEnveloped), but read by hand.
    const query = 'subscription { resourceUtilization(intervalSeconds: 1) { at } }';
    const principal = (await apiA.services.tokens.authenticate(viewer))!;
    const { schema, subscribe, contextFactory, parse } = apiA.app.yoga.getEnveloped({ connectionParams: {}, principal, requestId: 'stalled-reader', params: { query } });
    const result = await subscribe({ schema, document: parse(query), contextValue: await contextFactory() });
    const iterator = (result as AsyncIterable<any>)[Symbol.asyncIterator]();
    const at = async () => Date.parse((await iterator.next()).value.data.resourceUtilization.at);
    await at();
    await sleep(3_500); // three intervals and a half without asking
    const askedAgain = Date.now();
    const next = await at();
    // Not a snapshot from while nobody asked (the old timer had three queued by now), but one taken since.
    expect(next).toBeGreaterThanOrEqual(askedAgain);
    expect(await at()).toBeGreaterThanOrEqual(next + 900);
    await iterator.return?.();
  });

  const fields = `at queues { queue waiting active delayed failed }
    workers { workerId host pid queues concurrency { queue slots } busySlots startedAt lastSeenAt }
    runningTasks { taskId pid workerId cpuPercent rssBytes }
    apiReplicas { replicaId host pid webSocketConnections startedAt lastSeenAt }`;

  it('shows both replicas, the worker and its running child; a worker that stops beating disappears within ~3 beats', async () => {
    const client = wsClient(apiA.url, viewer);
    const live = collect(client, `subscription { resourceUtilization(intervalSeconds: 1) { ${fields} } }`);
    const id = await submit({ steps: 30, stepMs: 100 });
    const workerId = worker.host.workerId;

    const snap = await waitFor(async () => {
      const r = (await apiB.gql(`{ resourceUtilization { ${fields} } }`, {}, viewer)).body.data?.resourceUtilization;
      return r?.runningTasks.some((t: any) => t.taskId === id && t.rssBytes > 0) && r.apiReplicas.some((a: any) => a.replicaId === replicaId(apiA) && a.webSocketConnections >= 1) ? r : null;
    }, 10_000, 'the running child in resourceUtilization');
    expect(snap.apiReplicas.map((r: any) => r.replicaId)).toEqual(expect.arrayContaining([replicaId(apiA), replicaId(apiB)]));
    const w = snap.workers.find((x: any) => x.workerId === workerId);
    expect(w).toMatchObject({ pid: process.pid, host: hostname() });
    expect([...w.queues].sort()).toEqual(['BATCH', 'CRITICAL', 'NORMAL']);
    expect(w.concurrency).toEqual(expect.arrayContaining([{ queue: 'NORMAL', slots: 2 }, { queue: 'CRITICAL', slots: 2 }, { queue: 'BATCH', slots: 1 }]));
    expect(w.busySlots).toBeGreaterThanOrEqual(1);
    const child = snap.runningTasks.find((t: any) => t.taskId === id);
    expect(child.workerId).toBe(workerId);
    expect(child.pid).toBeGreaterThan(0);
    expect(child.pid).not.toBe(process.pid);
    expect(() => process.kill(child.pid, 0)).not.toThrow(); // a live process
    expect(child.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(snap.queues.find((q: any) => q.queue === 'NORMAL').active).toBeGreaterThanOrEqual(1);

    // The subscription ticks every second and saw the same child.
    await waitFor(async () => live.events.some((e: any) => e.resourceUtilization.runningTasks.some((t: any) => t.taskId === id && t.pid === child.pid)), 5000, 'the child in the subscription');
    const ats = live.events.map((e: any) => Date.parse(e.resourceUtilization.at));
    expect(ats.length).toBeGreaterThanOrEqual(2);
    expect(ats.at(-1)! - ats.at(-2)!).toBeGreaterThanOrEqual(800);

    await finished(id);
    await waitFor(async () => {
      const r = (await apiB.gql(`{ resourceUtilization { ${fields} } }`, {}, viewer)).body.data?.resourceUtilization;
      return r && !r.runningTasks.some((t: any) => t.taskId === id) && r.workers.find((x: any) => x.workerId === workerId)?.busySlots === 0;
    }, 5000, 'the child to leave resourceUtilization');

    // The worker stops beating (as if killed): its key expires after three missed 500 ms beats.
    clearInterval((worker.host as unknown as { heartbeat: NodeJS.Timeout }).heartbeat);
    const stoppedAt = Date.now();
    await waitFor(async () => {
      const r = (await apiB.gql(`{ resourceUtilization { workers { workerId } } }`, {}, viewer)).body.data?.resourceUtilization;
      return r && !r.workers.some((x: any) => x.workerId === workerId);
    }, 4000, 'the silent worker to disappear');
    const gone = Date.now() - stoppedAt;
    expect(gone).toBeGreaterThan(500); // it expired, nobody deleted it
    expect(gone).toBeLessThan(2500);
    await waitFor(async () => !live.events.at(-1)?.resourceUtilization.workers.some((x: any) => x.workerId === workerId), 2500, 'the subscription to drop the worker');
    workerClosed = true;
    await worker.close();
    live.dispose();
    await client.dispose();
    expect(live.errors).toEqual([]);
  });
});
