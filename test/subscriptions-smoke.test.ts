import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { rawId } from '../src/domain/ids.js';
import { streamTaskEvents } from '../src/domain/tasks/task-event-stream.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { startTestWorker, waitFor, type TestWorker } from './support/worker-harness.js';
import { collect, wsClient, type Collected } from './support/ws-client.js';

let api: TestApi;
let worker: TestWorker;
let token: string;

beforeAll(async () => {
  api = await startTestApi('subs_smoke');
  worker = await startTestWorker(api);
  token = await api.token('OWNER');
  await api.gql(
    `mutation { registerOrg(input: { alias: "dev", kind: DEVELOPER, credentials: { instanceUrl: "https://dev.my.salesforce.com", refreshToken: "5Aep861subs" } }) { __typename } }`,
    {},
    token,
  );
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
});

const submit = `mutation($p: JSON) { submitTask(input: { type: DIAGNOSTIC, org: "dev", params: $p }) { ... on SubmitTaskSuccess { task { id } } } }`;
const events = `subscription($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { seq cursor kind payload } }`;

/** Follows a task's events from the start until the stream completes; they must come complete and in order. */
async function followToEnd(id: string): Promise<Collected<any>> {
  const client = wsClient(api.url, token);
  const sub = collect(client, events, { id });
  await sub.done;
  await client.dispose();
  expect(sub.errors).toEqual([]);
  expect(sub.completed).toBe(true);
  const seqs = sub.events.map((e: any) => e.taskEvents.seq);
  expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
  return sub;
}

describe('taskEvents subscription', () => {
  it('streams a running task\'s events in order and completes', async () => {
    const id = (await api.gql(submit, { p: { steps: 5, stepMs: 50 } }, token)).body.data.submitTask.task.id;
    const sub = await followToEnd(id);
    expect(sub.events.at(-1).taskEvents.payload.status).toBe('SUCCEEDED');
  });

  it("follows a retried task past the final status of its earlier run, to the retry's", async () => {
    const id = (await api.gql(submit, { p: { steps: 10, stepMs: 100 } }, token)).body.data.submitTask.task.id;
    const status = async () => (await api.prisma.task.findUnique({ where: { id: rawId(id, 'Task')! } }))?.status;
    await waitFor(async () => (await status()) === 'RUNNING', 10_000, 'first run started');
    await api.gql(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id }, token);
    await waitFor(async () => (await status()) === 'CANCELLED', 10_000, 'first run cancelled');
    const retried = await api.gql(`mutation($id: ID!) { retryTask(id: $id) { __typename } }`, { id }, token);
    expect(retried.body.data.retryTask.__typename).toBe('RetryTaskSuccess');
    // Followed from the start, while the retry runs: the stream goes past CANCELLED to the retry's end.
    const sub = await followToEnd(id);
    const statuses = sub.events.filter((e: any) => e.taskEvents.kind === 'STATUS').map((e: any) => e.taskEvents.payload.status);
    expect(statuses.indexOf('CANCELLED')).toBeGreaterThan(0);
    expect(statuses.slice(statuses.indexOf('CANCELLED'))).toEqual(['CANCELLED', 'QUEUED', 'RUNNING', 'SUCCEEDED']);
  });

  it('reads the log again once Redis confirms the live subscription, so an event published just before is not missed', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const id = rawId((await api.gql(`mutation($runAt: DateTime) { submitTask(input: { type: DIAGNOSTIC, org: "dev", runAt: $runAt }) { ... on SubmitTaskSuccess { task { id } } } }`, { runAt }, token)).body.data.submitTask.task.id, 'Task')!;
    // A live side whose subscription Redis confirms only later, and that never delivers: the event written
    // meanwhile was published before Redis sent the channel anything.
    let confirm!: () => void;
    const ready = new Promise<void>((resolve) => (confirm = resolve));
    const unconfirmed = { ready, next: () => new Promise<never>(() => undefined), [Symbol.asyncIterator]() { return this; } };
    const seen: Array<{ seq: number; kind: string }> = [];
    const stream = streamTaskEvents(api.prisma, () => unconfirmed, id, 0, { quietRecheckMs: 60_000 });
    void (async () => {
      for await (const event of stream) seen.push(event);
    })();
    try {
      await waitFor(async () => seen.length >= 1, 5000, 'the log so far');
      await api.services.journal.change(id, null, {}, [{ kind: 'LOG', payload: { level: 'info', message: 'published before the subscription was confirmed' } }]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seen.map((e) => e.seq)).toEqual([1]); // not re-read on its own before the quiet re-check (60 s)
      confirm();
      await waitFor(async () => seen.length >= 2, 5000, 'the event written before the confirmation');
      expect(seen.map((e) => [e.seq, e.kind])).toEqual([[1, 'STATUS'], [2, 'LOG']]);
    } finally {
      await stream.return?.();
    }
  });

  it('completes when the task has ended though a LOG line came after its final status and the live final status was missed', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const id = rawId((await api.gql(`mutation($p: JSON, $runAt: DateTime) { submitTask(input: { type: DIAGNOSTIC, org: "dev", params: $p, runAt: $runAt }) { ... on SubmitTaskSuccess { task { id } } } }`, { p: { steps: 1, stepMs: 0 }, runAt }, token)).body.data.submitTask.task.id, 'Task')!;
    // A live side that never delivers: every event has to come from the quiet re-reads of the log.
    const silent: AsyncIterableIterator<never> = { next: () => new Promise(() => undefined), [Symbol.asyncIterator]() { return this; } };
    const seen: Array<{ kind: string; payload: any }> = [];
    const done = (async () => {
      for await (const event of streamTaskEvents(api.prisma, () => silent, id, 0, { quietRecheckMs: 100 })) seen.push(event);
    })();
    await waitFor(async () => seen.length >= 1, 5000, 'the first event');
    await api.services.journal.change(id, ['SCHEDULED'], { status: 'CANCELLED', finishedAt: new Date() }, [{ kind: 'STATUS', payload: { status: 'CANCELLED' } }]);
    await api.services.journal.change(id, null, {}, [{ kind: 'LOG', payload: { level: 'info', message: 'a late line' } }]);
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not complete')), 5000))]);
    expect(seen.map((event) => event.kind)).toEqual(['STATUS', 'STATUS', 'LOG']);
  });

  it('answers TASK_NOT_FOUND for a task that does not exist, rather than a stream that completes empty', async () => {
    const client = wsClient(api.url, token);
    const sub = collect(client, events, { id: '00000000-0000-4000-8000-000000000000' });
    await sub.done;
    await client.dispose();
    expect(sub.events).toEqual([]);
    expect(sub.errors.flat().map((e: any) => e?.extensions?.code)).toEqual(['TASK_NOT_FOUND']);
  });

  it('shares one execution among identical subscriptions, with late joiners caught up', async () => {
    const id = (await api.gql(submit, { p: { steps: 20, stepMs: 40 } }, token)).body.data.submitTask.task.id;
    const clients = Array.from({ length: 4 }, () => wsClient(api.url, token));
    const early = clients.slice(0, 3).map((client) => collect(client, events, { id }));
    // One subscriber leaves early: the others must not notice.
    await waitFor(async () => early[0]!.events.length >= 3, 10_000, 'first events');
    early[0]!.dispose();
    await waitFor(async () => early[1]!.events.length >= 8, 10_000, 'more events');
    // Three subscribers, one execution.
    expect(api.app.subscriptionStats().sharedExecutions).toBe(1);
    const late = collect(clients[3]!, events, { id });
    await Promise.all([early[1]!.done, early[2]!.done, late.done]);
    await Promise.all(clients.map((client) => client.dispose()));
    const seqs = (sub: { events: any[] }) => sub.events.map((e) => e.taskEvents.seq);
    const all = seqs(early[1]!);
    expect(all).toEqual(all.map((_: number, i: number) => i + 1));
    expect(all.length).toBeGreaterThan(20);
    expect(seqs(early[2]!)).toEqual(all);
    expect(seqs(late)).toEqual(all);
    expect(late.completed).toBe(true);
  });

  it('frees a token\'s connection slot as soon as a socket subscribed to an idle task closes', async () => {
    const limited = await startTestApi('subs_slots', { shareWith: api, subscriptionLimits: { maxConnectionsPerToken: 2 } });
    try {
      // Scheduled an hour ahead: its event stream stays open and idle.
      const scheduled = await api.gql(
        `mutation($at: DateTime) { submitTask(input: { type: DIAGNOSTIC, org: "dev", runAt: $at }) { ... on SubmitTaskSuccess { task { id status } } } }`,
        { at: new Date(Date.now() + 3_600_000).toISOString() },
        token,
      );
      const { id, status } = scheduled.body.data.submitTask.task;
      expect(status).toBe('SCHEDULED');
      for (let round = 0; round < 3; round += 1) {
        const clients = [wsClient(limited.url, token), wsClient(limited.url, token)];
        const subs = clients.map((client) => collect(client, events, { id }));
        await waitFor(async () => subs.every((sub) => sub.events.length >= 1), 5000, `round ${round}: both subscribed`);
        expect(limited.app.subscriptionStats().connections).toBe(2);
        expect(subs.flatMap((sub) => sub.errors)).toEqual([]);
        expect(clients.flatMap((client) => client.closeCodes)).toEqual([]);
        await Promise.all(clients.map((client) => client.dispose()));
        await waitFor(async () => limited.app.subscriptionStats().connections === 0, 5000, `round ${round}: closed`);
      }
    } finally {
      await limited.close();
    }
  });

  it('takes no slot for a socket that closes while its token is looked up', async () => {
    const limited = await startTestApi('subs_slots_early', { shareWith: api, subscriptionLimits: { maxConnectionsPerToken: 2 } });
    try {
      const fresh = await api.token('VIEWER'); // not yet in the replica's token cache: the lookup goes to Postgres
      const sockets = Array.from({ length: 10 }, () => new WebSocket(`${limited.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws'));
      await Promise.all(sockets.map((socket) => once(socket, 'open')));
      for (const socket of sockets) socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${fresh}` } }));
      for (const socket of sockets) socket.terminate();
      await waitFor(async () => limited.app.subscriptionStats().connections === 0, 5000, 'the sockets to close');
      await new Promise((resolve) => setTimeout(resolve, 300)); // every lookup answered
      const clients = [wsClient(limited.url, fresh), wsClient(limited.url, fresh)];
      const results = clients.map((client) => collect(client, '{ viewer { role } }'));
      await Promise.all(results.map((result) => result.done));
      expect(results.map((result) => result.events)).toEqual([[{ viewer: { role: 'VIEWER' } }], [{ viewer: { role: 'VIEWER' } }]]);
      expect(clients.flatMap((client) => client.closeCodes)).toEqual([]);
      await Promise.all(clients.map((client) => client.dispose()));
    } finally {
      await limited.close();
    }
  });

  it('refuses a connection without a valid token', async () => {
    const client = wsClient(api.url, 'syt_' + 'x'.repeat(43));
    const sub = collect(client, events, { id: '00000000-0000-0000-0000-000000000000' });
    await sub.done;
    await waitFor(async () => client.closeCodes.length > 0, 5000, 'close');
    expect(client.closeCodes[0]).toBe(4403);
  });
});
