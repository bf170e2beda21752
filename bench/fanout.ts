// Fan-out benchmark: 1,000 WebSocket subscribers to Subscription.taskEvents of one task, events published at
// a steady rate, publish→receive latency over all subscribers, delivery (complete and in order), and the API
// process's memory per idle subscription. Two rounds by default, each against a fresh API process (bench/fanout-server.ts,
// forked, so its RSS is its own):
//   shared    identical subscriptions: one shared execution (src/server/shared-subscriptions.ts)
//   unshared  each subscriber sends an extra, unused variable ({ nonce: i }), so sharing keys differ and every
//             subscriber gets its own execution, as with stock graphql-ws
//   floor     (optional) not Switchyard: a bare ws server that serialises each event once and ws.send()s it
//             to every socket; what the transport alone costs on this machine
// Subscribers are raw `ws` sockets speaking graphql-transport-ws (no graphql-ws client per socket), all in
// this process, which also publishes through TaskJournal.change (the path a worker's LOG events take:
// Postgres transaction, then Redis PUBLISH) and stamps each event with performance.now() for the latency.
// Loopback only; a throw-away Postgres schema (bench_fanout_*) and Redis prefix (sybench-fanout-*) are
// removed at the end.
//
//   npx tsc -p bench/tsconfig.fanout.json && node dist-bench/bench/fanout.js
//   (bench/tsconfig.json builds every benchmark into the same dist-bench/ and works too)
//
// Tunables (environment): BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_FANOUT_SUBSCRIBERS (1000),
// BENCH_FANOUT_RATE (events/s, 20), BENCH_FANOUT_SECONDS (10), BENCH_FANOUT_ROUNDS (shared,unshared; add
// "floor" for the reference fan-out of bench/fanout-server.ts: a bare ws server, not Switchyard),
// BENCH_FANOUT_PROFILE=1 (V8 CPU profiles of the API while sockets connect and while events are published:
// top functions and packages by self time; adds
// overhead, so latency figures of a profiled run are not the reference), BENCH_FANOUT_HEAP=1 (heap snapshots
// of the API before and after subscribing: growth per subscription by constructor; slow),
// BENCH_FANOUT_DRAIN_SECONDS (30: how long to wait for a backlog after the last publish), BENCH_FANOUT_NICE
// (e.g. -10, needs root: scheduling priority of this process and the API process on a busy machine),
// BENCH_DEADLINE_SECONDS (240). See bench/README.md.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import WebSocket from 'ws';
import { migrate } from '../src/db/migrate.js';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { loadEnv } from '../src/env.js';
import { waitForRedis } from '../src/redis.js';
import { createRuntime } from '../src/runtime.js';
import type { Services } from '../src/services.js';
import { forkApi, ForkedApi } from './lib/api-process.js';
import { intEnv, redisUrl, sleep, withTimeout } from './lib/env.js';
import type { ProfileSummary } from './lib/profile.js';
import { heading, labelledLine, ms, printEnd, tableHeader, verdict } from './lib/report.js';
import { createScratch, runEnvironment } from './lib/scratch.js';
import { quantileSorted, sortedCopy } from './lib/stats.js';

// ---------------------------------------------------------------------------------------------- settings


const subscribers = intEnv('BENCH_FANOUT_SUBSCRIBERS', 1000);
const rate = intEnv('BENCH_FANOUT_RATE', 20);
const seconds = intEnv('BENCH_FANOUT_SECONDS', 10);
const events = rate * seconds;
const rounds = (process.env.BENCH_FANOUT_ROUNDS ?? 'shared,unshared').split(',').map((r) => r.trim()) as Mode[];
const profile = process.env.BENCH_FANOUT_PROFILE === '1';
const heap = process.env.BENCH_FANOUT_HEAP === '1';
const drainSeconds = intEnv('BENCH_FANOUT_DRAIN_SECONDS', 30);
/** Scheduling priority for this process and the API process (e.g. -10 as root on a busy shared machine). */
const nice = process.env.BENCH_FANOUT_NICE === undefined ? null : Number(process.env.BENCH_FANOUT_NICE);
const deadlineSeconds = intEnv('BENCH_DEADLINE_SECONDS', 240);
/** Subscribers opened, fed and closed before the "before" measurement, so code paths are loaded and compiled. */
const warmupSubscribers = 20;
const connectConcurrency = 100;
const goalP99Ms = 50;
const goalKbPerSubscription = 20;

type Mode = 'shared' | 'unshared' | 'floor';

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
const serverFile = fileURLToPath(new URL('./fanout-server.js', import.meta.url));

const document = 'subscription TaskEvents($id: ID!, $after: String) { taskEvents(taskId: $id, after: $after) { seq cursor kind payload createdAt } }';

// ----------------------------------------------------------------------------------------------- helpers

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

const line = labelledLine(60);

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string, pollMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}

// ------------------------------------------------------------------------------- the API process (forked)

interface ServerStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  cpuMs: number;
  elu: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  connections: number;
  sharedExecutions: number;
}

interface HeapClass {
  name: string;
  type: string;
  count: number;
  selfBytes: number;
}

/** The API process running now, for the deadline handler. */
let currentApi: ApiProcess | null = null;
/** Set by the deadline handler: failures from then on are the abort's doing. */
let aborting = false;

class ApiProcess extends ForkedApi<ProfileSummary> {
  private constructor(
    child: ChildProcess,
    readonly url: string,
  ) {
    super(child, 60_000);
  }

  static async start(env: Record<string, string>): Promise<ApiProcess> {
    const { child, ready } = await forkApi<{ url: string }>(serverFile, 'fanout-server', {
      execArgv: ['--expose-gc'],
      env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production', ...env },
      afterFork: (forked) => {
        if (nice !== null && forked.pid) setPriority(forked.pid, nice);
      },
    });
    currentApi = new ApiProcess(child, ready.url);
    return currentApi;
  }

  stats(gc: boolean): Promise<ServerStats> {
    return this.request({ t: 'stats', gc }, 'stats');
  }

  async heap(): Promise<HeapClass[]> {
    return (await this.request<{ classes: HeapClass[] }>({ t: 'heap', top: 100_000 }, 'heap', 120_000)).classes;
  }
}

// ------------------------------------------------------------------------------------ raw graphql-ws client

/** What every subscriber records; latencies go to one shared array (see Recorder). */
class Subscriber {
  readonly socket: WebSocket;
  acked: Promise<void>;
  /** Resolves with the first `next` message (the replayed QUEUED status event). */
  firstEvent: Promise<void>;
  lastSeq = 0;
  lastN = 0;
  received = 0;
  outOfOrder = 0;
  errors: unknown[] = [];
  completed = false;
  closeCode: number | null = null;
  private resolveFirst!: () => void;

  constructor(
    wsUrl: string,
    token: string,
    private readonly recorder: Recorder,
  ) {
    // perMessageDeflate off on our side too (the server's WebSocketServer leaves it off by default).
    this.socket = new WebSocket(wsUrl, 'graphql-transport-ws', { perMessageDeflate: false });
    this.socket.on('error', () => undefined); // e.g. ECONNRESET when the API process dies: the close code tells
    this.firstEvent = new Promise((resolve) => (this.resolveFirst = resolve));
    this.acked = new Promise((resolve, reject) => {
      this.socket.once('open', () => this.socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
      this.socket.once('error', reject);
      this.socket.once('close', (code) => {
        this.closeCode = code;
        reject(new Error(`socket closed with ${code} before connection_ack`));
      });
      this.socket.on('message', (data: Buffer) => {
        const at = performance.now();
        const message = JSON.parse(data.toString('utf8')) as { type: string; id?: string; payload?: any };
        if (message.type === 'next') return this.onNext(message.payload, at, data.length);
        if (message.type === 'connection_ack') return resolve();
        if (message.type === 'error') this.errors.push(message.payload);
        if (message.type === 'complete') this.completed = true;
        if (message.type === 'ping') this.socket.send('{"type":"pong"}');
      });
    });
    this.acked.catch(() => undefined);
  }

  subscribe(variables: Record<string, unknown>): void {
    this.socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: document, variables, operationName: 'TaskEvents' } }));
  }

  private onNext(payload: { data?: { taskEvents?: { seq: number; payload: { n?: number } } }; errors?: unknown[] }, at: number, bytes: number): void {
    if (payload.errors) this.errors.push(...payload.errors);
    const event = payload.data?.taskEvents;
    if (!event) return;
    if (event.seq !== this.lastSeq + 1 && this.lastSeq !== 0) this.outOfOrder += 1;
    this.lastSeq = event.seq;
    if (this.received === 0 && this.lastN === 0 && event.payload?.n === undefined) this.resolveFirst();
    const n = event.payload?.n;
    if (n === undefined) return;
    if (n !== this.lastN + 1) this.outOfOrder += 1;
    this.lastN = n;
    this.received += 1;
    this.recorder.record(n, at, bytes);
  }

  close(): void {
    this.socket.terminate();
  }
}

/** Publish times and receive times of one round. */
class Recorder {
  readonly sentAt: Float64Array;
  readonly changeMs: Float64Array;
  readonly latencies: Float64Array;
  count = 0;
  readonly firstReceive: Float64Array;
  readonly lastReceive: Float64Array;
  messageBytes = 0;

  constructor(readonly events: number, subscribers: number) {
    this.sentAt = new Float64Array(events + 1).fill(NaN);
    this.changeMs = new Float64Array(events + 1).fill(NaN);
    this.latencies = new Float64Array(events * subscribers);
    this.firstReceive = new Float64Array(events + 1).fill(NaN);
    this.lastReceive = new Float64Array(events + 1).fill(NaN);
  }

  record(n: number, at: number, bytes: number): void {
    if (n < 1 || n > this.events) return;
    if (this.count < this.latencies.length) this.latencies[this.count++] = at - this.sentAt[n]!;
    if (Number.isNaN(this.firstReceive[n]!)) this.firstReceive[n] = at;
    this.lastReceive[n] = at;
    this.messageBytes = bytes;
  }
}

// ------------------------------------------------------------------------------------------------ a round

interface Setup {
  services: Services;
  /** VIEWER tokens; subscriber i uses tokens[i % tokens.length] (the API caps connections per token). */
  tokens: string[];
  serverEnv: Record<string, string>;
}

interface RoundResult {
  mode: Mode;
  before: ServerStats;
  /** After connecting / subscribing the first half, then the second half. */
  steps: Array<{ connected: ServerStats; subscribed: ServerStats }>;
  halves: number[];
  connected: ServerStats;
  subscribed: ServerStats;
  connectCpuMs: number;
  subscribeCpuMs: number;
  afterPublish: ServerStats;
  publishCpuMs: number;
  /** From the first publish until every event was received (or the wait gave up). */
  windowSeconds: number;
  /** From the last publish until every event was received (or the wait gave up). */
  drainedAfter: number;
  publishElu: number;
  clientCpuMs: number;
  achievedRate: number;
  expected: number;
  delivered: number;
  outOfOrder: number;
  errors: number;
  closed: number;
  closeCodes: string;
  latency: { p50: number; p95: number; p99: number; max: number };
  first: { p50: number; p99: number };
  spread: { p50: number; p99: number };
  change: { p50: number; p99: number };
  messageBytes: number;
  profile: ProfileSummary | null;
  connectProfile: ProfileSummary | null;
  heapGrowth: HeapClass[] | null;
}

async function newTask(services: Services): Promise<string> {
  const task = await services.tasks.submit(cliPrincipal, { type: 'DIAGNOSTIC', org: 'bench', params: { steps: 1, stepMs: 0 } });
  return task.id;
}

async function publish(services: Services, taskId: string, recorder: Recorder | null, n: number): Promise<void> {
  const started = performance.now();
  if (recorder) recorder.sentAt[n] = started;
  await services.journal.change(taskId, null, {}, [{ kind: 'LOG', payload: { message: `fan-out event ${n}`, sentAt: Date.now(), n } }]);
  if (recorder) recorder.changeMs[n] = performance.now() - started;
}

function variablesFor(mode: Mode, taskId: string, index: number): Record<string, unknown> {
  // An unused variable is ignored by graphql-js but is part of the sharing key (variables are).
  return mode === 'shared' ? { id: taskId } : { id: taskId, nonce: index };
}

async function openSubscribers(wsUrl: string, tokens: string[], count: number, recorder: Recorder, first = 0): Promise<Subscriber[]> {
  const all: Subscriber[] = [];
  await pool(
    Array.from({ length: count }, (_, i) => first + i),
    connectConcurrency,
    async (index) => {
      const subscriber = new Subscriber(wsUrl, tokens[index % tokens.length]!, recorder);
      all.push(subscriber);
      await subscriber.acked;
    },
  );
  return all;
}

async function round(setup: Setup, mode: Mode): Promise<RoundResult> {
  const { services, tokens } = setup;
  const api = await ApiProcess.start({ ...setup.serverEnv, BENCH_FANOUT_SERVER: mode === 'floor' ? 'floor' : 'api' });
  const wsUrl = `${api.url.replace(/^http/, 'ws')}/graphql`;
  try {
    // Warm-up: a few subscribers on another task, fed a few events, then closed.
    const warmTask = await newTask(services);
    const warmRecorder = new Recorder(5, warmupSubscribers);
    const warm = await openSubscribers(wsUrl, tokens, warmupSubscribers, warmRecorder);
    warm.forEach((s, i) => s.subscribe(variablesFor(mode, warmTask, i)));
    await withTimeout(Promise.all(warm.map((s) => s.firstEvent)), 20_000, 'warm-up subscriptions');
    await sleep(200);
    for (let n = 1; n <= 5; n += 1) await publish(services, warmTask, warmRecorder, n);
    await waitUntil(() => warm.every((s) => s.received === 5), 10_000, 'warm-up events');
    warm.forEach((s) => s.close());
    // One more event for the warm-up task after its subscribers have gone. Without it their close would not
    // finish on the server while the task is idle: streamTaskEvents (an async generator) waits for the next
    // live event or its 5 s re-check at an `await`, not at a `yield`, so return() is queued until it next
    // yields, i.e. until the task's next event; graphql-ws awaits that return() before onClose, so the socket
    // stays counted against its token's connection cap (4429 for the benchmark's own sockets later).
    await sleep(200);
    await publish(services, warmTask, null, 0);
    let settled = await api.stats(false);
    for (let i = 0; i < 100 && (settled.connections > 0 || settled.sharedExecutions > 0); i += 1) {
      await sleep(50);
      settled = await api.stats(false);
    }
    await sleep(500);

    const before = await api.stats(true);
    const heapBefore = heap ? await api.heap() : null;

    // Two halves, each first connected (connection_init / connection_ack, no subscription), then subscribed
    // (every subscriber first gets the task's QUEUED status event, replayed, then idles). Measuring after each
    // step separates a connection's cost from its subscription's, and the second half gives the marginal cost
    // once the process's start-up slack (free heap pages, malloc arenas) is used up.
    const taskId = await newTask(services);
    const recorder = new Recorder(events, subscribers);
    const halves = [Math.ceil(subscribers / 2), Math.floor(subscribers / 2)];
    const subs: Subscriber[] = [];
    const steps: Array<{ connected: ServerStats; subscribed: ServerStats }> = [];
    let connectSeconds = 0;
    let subscribeSeconds = 0;
    let connectCpuMs = 0;
    let subscribeCpuMs = 0;
    let connectProfile: ProfileSummary | null = null;
    for (const [index, size] of halves.entries()) {
      if (profile && index === 0) await api.profileStart();
      const cpu0 = (await api.stats(false)).cpuMs;
      const connectStarted = performance.now();
      const half = await openSubscribers(wsUrl, tokens, size, recorder, subs.length);
      connectSeconds += (performance.now() - connectStarted) / 1000;
      const cpu1 = (await api.stats(false)).cpuMs;
      connectCpuMs += cpu1 - cpu0;
      if (profile && index === 0) connectProfile = await api.profileStop(15);
      await sleep(300);
      const connected = await api.stats(true);

      const subscribeStarted = performance.now();
      const cpu2 = (await api.stats(false)).cpuMs;
      half.forEach((s, i) => s.subscribe(variablesFor(mode, taskId, subs.length + i)));
      await withTimeout(Promise.all(half.map((s) => s.firstEvent)), 60_000, 'every subscriber to receive the replayed event');
      subscribeSeconds += (performance.now() - subscribeStarted) / 1000;
      subscribeCpuMs += (await api.stats(false)).cpuMs - cpu2;
      subs.push(...half);
      await sleep(1000); // let live listeners attach and the replay work be collected
      steps.push({ connected, subscribed: await api.stats(true) });
    }
    const connected = steps[0]!.connected;
    const subscribed = steps[steps.length - 1]!.subscribed;
    const heapAfter = heap ? await api.heap() : null;
    console.log(
      `  [${mode}] ${subs.length} sockets connected in ${connectSeconds.toFixed(1)} s, subscribed in ${subscribeSeconds.toFixed(1)} s; ` +
        `server: ${subscribed.connections} connections, ${subscribed.sharedExecutions} executions`,
    );

    // Publish at a steady rate, on a fixed schedule (a late publish does not push the later ones back).
    if (profile) await api.profileStart();
    const cpuStart = process.cpuUsage();
    const serverStart = await api.stats(false);
    const windowStarted = performance.now();
    const interval = 1000 / rate;
    const t0 = performance.now() + 20;
    for (let n = 1; n <= events; n += 1) {
      const wait = t0 + (n - 1) * interval - performance.now();
      if (wait > 0) await sleep(wait);
      await publish(services, taskId, recorder, n);
    }
    const publishSeconds = (performance.now() - t0) / 1000;
    const expected = events * subs.length;
    // Wait for the backlog to drain: until everything has arrived or the cap (an API that is behind can stall
    // for many seconds in one go, so a pause in arrivals does not mean it has given up).
    const drainStarted = performance.now();
    while (recorder.count < expected && performance.now() - drainStarted < drainSeconds * 1000 && api.child.exitCode === null) {
      await sleep(20);
    }
    const drainedAfter = (performance.now() - drainStarted) / 1000;
    if (recorder.count < expected) {
      console.log(`  [${mode}] ${expected - recorder.count} deliveries still missing ${drainedAfter.toFixed(1)} s after the last publish; giving up`);
    }
    const serverEnd = await api.stats(false);
    const cpu = process.cpuUsage(cpuStart);
    const windowSeconds = (performance.now() - windowStarted) / 1000;
    const profileSummary = profile ? await api.profileStop() : null;

    const sorted = sortedCopy(recorder.latencies.subarray(0, recorder.count));
    const firsts: number[] = [];
    const spreads: number[] = [];
    for (let n = 1; n <= events; n += 1) {
      firsts.push(recorder.firstReceive[n]! - recorder.sentAt[n]!);
      spreads.push(recorder.lastReceive[n]! - recorder.firstReceive[n]!);
    }
    const sortedFirsts = sortedCopy(firsts.filter(Number.isFinite));
    const sortedSpreads = sortedCopy(spreads.filter(Number.isFinite));
    const sortedChange = sortedCopy(Array.from(recorder.changeMs.subarray(1)).filter(Number.isFinite));

    subs.forEach((s) => s.close());

    let heapGrowth: HeapClass[] | null = null;
    if (heapBefore && heapAfter) {
      const base = new Map(heapBefore.map((c) => [`${c.type}|${c.name}`, c]));
      heapGrowth = heapAfter
        .map((c) => {
          const was = base.get(`${c.type}|${c.name}`);
          return { name: c.name, type: c.type, count: c.count - (was?.count ?? 0), selfBytes: c.selfBytes - (was?.selfBytes ?? 0) };
        })
        .sort((a, b) => b.selfBytes - a.selfBytes)
        .slice(0, 30);
    }

    return {
      mode,
      before,
      steps,
      halves,
      connected,
      subscribed,
      connectCpuMs,
      subscribeCpuMs,
      afterPublish: serverEnd,
      publishCpuMs: serverEnd.cpuMs - serverStart.cpuMs,
      windowSeconds,
      drainedAfter,
      publishElu: serverEnd.elu,
      clientCpuMs: (cpu.user + cpu.system) / 1000,
      achievedRate: events / publishSeconds,
      expected,
      delivered: subs.reduce((sum, s) => sum + s.received, 0),
      outOfOrder: subs.reduce((sum, s) => sum + s.outOfOrder, 0),
      errors: subs.reduce((sum, s) => sum + s.errors.length, 0),
      closed: subs.filter((s) => s.closeCode !== null).length,
      closeCodes: Object.entries(
        subs.reduce<Record<string, number>>((codes, s) => {
          if (s.closeCode !== null) codes[s.closeCode] = (codes[s.closeCode] ?? 0) + 1;
          return codes;
        }, {}),
      )
        .map(([code, count]) => `${count}× ${code}`)
        .join(', '),
      latency: {
        p50: quantileSorted(sorted, 0.5),
        p95: quantileSorted(sorted, 0.95),
        p99: quantileSorted(sorted, 0.99),
        max: sorted.length ? sorted[sorted.length - 1]! : NaN,
      },
      first: { p50: quantileSorted(sortedFirsts, 0.5), p99: quantileSorted(sortedFirsts, 0.99) },
      spread: { p50: quantileSorted(sortedSpreads, 0.5), p99: quantileSorted(sortedSpreads, 0.99) },
      change: { p50: quantileSorted(sortedChange, 0.5), p99: quantileSorted(sortedChange, 0.99) },
      messageBytes: recorder.messageBytes,
      profile: profileSummary,
      connectProfile,
      heapGrowth,
    };
  } finally {
    await api.stop();
  }
}

/** RSS per subscription (connection included) from the second half: after − after the first half. */
function marginalRss(r: RoundResult): number {
  const [first, second] = r.steps;
  return first && second ? (second.subscribed.rss - first.subscribed.rss) / r.halves[1]! : NaN;
}

/** What the goal is judged on, in KB: the larger of (after − before) / N and the marginal figure. */
function rssPerSubscriptionKb(r: RoundResult): number {
  const whole = (r.subscribed.rss - r.before.rss) / subscribers / 1024;
  const marginal = marginalRss(r) / 1024;
  return Number.isFinite(marginal) ? Math.max(whole, marginal) : whole;
}

function printProfile(p: ProfileSummary): void {
  console.log(`     by package: ${p.packages.map((g) => `${g.name} ${ms(g.selfMs, 0)}`).join(', ')}`);
  for (const f of p.functions) console.log(`     ${ms(f.selfMs, 0).padStart(9)}  ${f.name}  ${f.url ? `${f.url}:${f.line}` : ''}`);
}

function printRound(r: RoundResult): void {
  heading(
    r.mode === 'shared'
      ? `Round "shared": ${subscribers} identical subscriptions (one shared execution)`
      : r.mode === 'unshared'
        ? `Round "unshared": ${subscribers} subscriptions with distinct variables (one execution each, as stock graphql-ws)`
        : `Round "floor" (reference, NOT Switchyard): bare ws server, one JSON.stringify per event, ws.send to each socket`,
  );
  const perSub = (a: number, b: number) => kb((b - a) / subscribers);
  const goalLatency = verdict(r.latency.p99 <= goalP99Ms);
  const rssPerSub = rssPerSubscriptionKb(r);
  line('publish→receive latency p50 / p95 / p99 (all subscribers)', `${ms(r.latency.p50)} / ${ms(r.latency.p95)} / ${ms(r.latency.p99)}   (max ${ms(r.latency.max)})`);
  line(`  goal p99 ≤ ${goalP99Ms} ms (stock graphql-ws + Pothos: 80 ms)`, goalLatency);
  line('  first subscriber to receive, per event: p50 / p99', `${ms(r.first.p50)} / ${ms(r.first.p99)}   (publish path: Postgres + Redis + one execution)`);
  line('  first → last subscriber, per event: p50 / p99', `${ms(r.spread.p50)} / ${ms(r.spread.p99)}   (fan-out across ${subscribers} sockets)`);
  line('  TaskJournal.change (Postgres transaction + PUBLISH): p50 / p99', `${ms(r.change.p50)} / ${ms(r.change.p99)}`);
  const complete = r.delivered === r.expected && r.outOfOrder === 0 && r.errors === 0 && r.closed === 0;
  line(
    'events delivered / expected',
    `${r.delivered} / ${r.expected} (${((r.delivered / r.expected) * 100).toFixed(2)}%), out of order ${r.outOfOrder}, errors ${r.errors}, sockets closed by the server ${r.closed}${r.closed ? ` (${r.closeCodes})` : ''} → ${complete ? 'OK' : 'NOT OK'}`,
  );
  line(
    'publish rate achieved; last delivery after the last publish',
    `${r.achievedRate.toFixed(1)} events/s (asked ${rate}/s for ${seconds} s); +${r.drainedAfter.toFixed(1)} s; a next message is ${r.messageBytes} bytes`,
  );
  const [h1, h2] = r.halves as [number, number];
  const [s1, s2] = r.steps as [{ connected: ServerStats; subscribed: ServerStats }, { connected: ServerStats; subscribed: ServerStats }];
  const per = (a: number, b: number, count: number) => kb((b - a) / count);
  line('server RSS before connecting (after warm-up, GC)', `${mb(r.before.rss)}   (heap used ${mb(r.before.heapUsed)})`);
  line(`server RSS with ${subscribers} idle subscriptions`, `${mb(r.subscribed.rss)}   (heap used ${mb(r.subscribed.heapUsed)}, external ${mb(r.subscribed.external)})`);
  line(
    'per idle subscription (after − before) / N, RSS',
    `${kb((r.subscribed.rss - r.before.rss) / subscribers)}  → ${verdict(rssPerSub <= goalKbPerSubscription)} (goal ≤ ${goalKbPerSubscription} KB; stock: ~39 KB per connection;` +
      ` judged on the larger of this and the marginal figure below, as RSS moves in steps)`,
  );
  line('  JS heap used / external, same basis', `${perSub(r.before.heapUsed, r.subscribed.heapUsed)} / ${perSub(r.before.external, r.subscribed.external)}`);
  line(`  marginal, second ${h2} (RSS / heap): connection + subscription`, `${per(s1.subscribed.rss, s2.subscribed.rss, h2)} / ${per(s1.subscribed.heapUsed, s2.subscribed.heapUsed, h2)}`);
  line('    of which the acked connection alone (RSS / heap)', `${per(s1.subscribed.rss, s2.connected.rss, h2)} / ${per(s1.subscribed.heapUsed, s2.connected.heapUsed, h2)}`);
  line('    of which the subscription on it (RSS / heap)', `${per(s2.connected.rss, s2.subscribed.rss, h2)} / ${per(s2.connected.heapUsed, s2.subscribed.heapUsed, h2)}`);
  line(`  first ${h1}: connection / subscription (RSS)`, `${per(r.before.rss, s1.connected.rss, h1)} / ${per(s1.connected.rss, s1.subscribed.rss, h1)}`);
  line('server CPU to accept a connection / to start a subscription', `${ms(r.connectCpuMs / subscribers, 2)} / ${ms(r.subscribeCpuMs / subscribers, 2)} per socket`);
  line('sharedExecutions (idle, all subscribed)', `${r.subscribed.sharedExecutions}   (connections ${r.subscribed.connections})`);
  const w = r.windowSeconds;
  line(
    'server CPU, first publish → last delivery',
    `${(r.publishCpuMs / 1000).toFixed(2)} s over ${w.toFixed(1)} s (${((r.publishCpuMs / (w * 1000)) * 100).toFixed(0)}% of a core), ${ms(r.publishCpuMs / events, 2)} per event = ${((r.publishCpuMs * 1000) / r.expected).toFixed(1)} µs per delivery; event loop busy ${(r.publishElu * 100).toFixed(0)}%`,
  );
  line('API event-loop delay in that window: p99 / max', `${ms(r.afterPublish.loopDelayP99Ms)} / ${ms(r.afterPublish.loopDelayMaxMs)}   (how long timers and I/O wait behind a fan-out)`);
  line('benchmark process CPU, same window (clients + publisher)', `${(r.clientCpuMs / 1000).toFixed(2)} s (${((r.clientCpuMs / (w * 1000)) * 100).toFixed(0)}% of a core), ${ms(r.clientCpuMs / events, 2)} per event`);
  line('server RSS after publishing (no GC)', mb(r.afterPublish.rss));
  if (r.connectProfile) {
    const p = r.connectProfile;
    console.log(`  -- API CPU profile while ${subscribers} sockets connected: ${p.samples} samples over ${ms(p.totalMs, 0)}; top functions by self time (${p.file})`);
    printProfile(p);
  }
  if (r.profile) {
    console.log(`  -- API CPU profile while publishing: ${r.profile.samples} samples over ${ms(r.profile.totalMs, 0)}; top functions by self time (${r.profile.file})`);
    printProfile(r.profile);
  }
  if (r.heapGrowth) {
    console.log('  -- JS heap growth per idle subscription by constructor (snapshot after subscribing − before)');
    for (const c of r.heapGrowth) {
      console.log(`     ${`${(c.selfBytes / subscribers).toFixed(0)} B`.padStart(8)}  ${(c.count / subscribers).toFixed(2).padStart(6)} objects  ${c.type === 'object' ? c.name : `${c.name} [${c.type}]`}`);
    }
  }
}

// ----------------------------------------------------------------------------------------------- the bench

/** The soft RLIMIT_NOFILE of this process (Linux), which the forked API process inherits. */
function openFileLimit(): number | null {
  try {
    const row = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = row?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === 'unlimited' ? Infinity : soft ? Number(soft) : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const began = performance.now();
  const scratch = createScratch('fanout');
  let cleaning = false;
  const cleanup = async () => {
    if (cleaning) return;
    cleaning = true;
    await scratch.remove();
  };
  const deadline = setTimeout(() => {
    console.error(`\nBenchmark exceeded BENCH_DEADLINE_SECONDS=${deadlineSeconds}; aborting.`);
    currentApi?.child.kill('SIGKILL');
    process.on('uncaughtException', () => undefined); // whatever was in flight fails now; clean up regardless
    process.on('unhandledRejection', () => undefined);
    aborting = true;
    void cleanup().finally(() => process.exit(2));
  }, deadlineSeconds * 1000);
  deadline.unref();

  console.log(
    `Fan-out benchmark: ${subscribers} graphql-ws subscribers to one task's taskEvents, ${rate} events/s for ${seconds} s ` +
      `(${events} events, ${events * subscribers} deliveries per round); rounds: ${rounds.join(', ')}`,
  );
  const load = loadavg()[0]!;
  if (load > cpus().length) {
    console.log(`  WARNING: load average ${load.toFixed(1)} on ${cpus().length} cores before starting: other work competes for the CPU and inflates latency figures`);
  }
  if (nice !== null) {
    setPriority(nice);
    console.log(`  priority: nice ${nice} for this process and the API process (Postgres and Redis unchanged)`);
  }
  const openFiles = openFileLimit();
  console.log(`  machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, open-file limit (soft, inherited by the API process): ${openFiles ?? 'unknown'}`);
  if (openFiles !== null && openFiles < subscribers + 256) {
    throw new Error(`The open-file limit (${openFiles}) is too low for ${subscribers} sockets in one process: raise it first (ulimit -n ${subscribers * 2 + 1024})`);
  }

  await migrate(scratch.databaseUrl, migrationsDir);
  // One configuration for this process (setup and publishing) and the API process, read through loadEnv
  // from an explicit object (nothing from this shell's environment, e.g. no VAULT_ADDR).
  const switchyardEnv = runEnvironment(scratch, { LOG_LEVEL: 'info' });
  const runtime = await createRuntime(loadEnv(switchyardEnv), pino({ level: 'warn' }));
  if (!(await waitForRedis(runtime.redis, 5000))) throw new Error(`Redis at ${redisUrl} is not reachable`);
  const services = runtime.services;
  const results: RoundResult[] = [];
  try {
    await services.orgs.register(cliPrincipal, {
      alias: 'bench',
      kind: 'DEVELOPER',
      credentials: { instanceUrl: 'https://bench.my.salesforce.com', refreshToken: '5Aep861benchfanout' },
    });
    // VIEWER tokens (a dashboard audience), as few as the per-token connection cap allows: sharing is per role,
    // not per token, so this does not change what is shared.
    const perToken = runtime.env.SWITCHYARD_WS_MAX_CONNECTIONS_PER_TOKEN;
    const tokens: string[] = [];
    for (let i = 0; i < Math.ceil(subscribers / perToken); i += 1) {
      tokens.push((await services.tokens.create(cliPrincipal, { name: `bench-fanout-${i}`, role: 'VIEWER', userName: `bench-${i}` })).secret);
    }
    console.log(`  ${tokens.length} VIEWER tokens, at most ${perToken} connections each (SWITCHYARD_WS_MAX_CONNECTIONS_PER_TOKEN)`);
    const setup: Setup = { services, tokens, serverEnv: { BENCH_SWITCHYARD_ENV: JSON.stringify(switchyardEnv) } };
    for (const mode of rounds) {
      if (mode !== 'shared' && mode !== 'unshared' && mode !== 'floor') throw new Error(`BENCH_FANOUT_ROUNDS: unknown round ${mode}`);
      const result = await round(setup, mode);
      results.push(result);
      printRound(result);
    }
  } finally {
    if (!aborting) {
      await runtime.close();
      await cleanup();
    }
  }

  heading('Summary');
  const row = tableHeader([44, ...results.map(() => 24), 24], ['figure', ...results.map((r) => r.mode), 'goal (stock graphql-ws)']);
  const mark = (ok: boolean) => ` ${verdict(ok)}`;
  row(['p50 / p95 latency', ...results.map((r) => `${ms(r.latency.p50)} / ${ms(r.latency.p95)}`), '']);
  row(['p99 latency', ...results.map((r) => `${ms(r.latency.p99)}${mark(r.latency.p99 <= goalP99Ms)}`), `≤ ${goalP99Ms} ms (80 ms)`]);
  row([
    'delivered, in order, no socket closed',
    ...results.map((r) => `${((r.delivered / r.expected) * 100).toFixed(2)}%${r.outOfOrder ? `, ${r.outOfOrder} out of order` : ''}${r.closed ? `, ${r.closed} closed` : ''}`),
    '100%, 0, 0',
  ]);
  row(['RSS per idle subscription: (after−before)/N', ...results.map((r) => kb((r.subscribed.rss - r.before.rss) / subscribers)), '']);
  row([
    '  marginal (2nd half); verdict on the larger',
    ...results.map((r) => `${kb(marginalRss(r))}${mark(rssPerSubscriptionKb(r) <= goalKbPerSubscription)}`),
    `≤ ${goalKbPerSubscription} KB (~39 KB)`,
  ]);
  row(['RSS before / with subscribers', ...results.map((r) => `${mb(r.before.rss)} / ${mb(r.subscribed.rss)}`), '']);
  row(['sharedExecutions', ...results.map((r) => String(r.subscribed.sharedExecutions)), '']);
  row(['server CPU per event', ...results.map((r) => ms(r.publishCpuMs / events, 2)), '']);
  console.log('');
  printEnd(line, began);
}

main().then(
  () => process.exit(0),
  (error) => {
    if (aborting) return; // the deadline handler cleans up and exits; this is what its abort broke
    console.error(error);
    process.exit(1);
  },
);
