// Dispatch benchmark: how long a task takes to get from submitTask to a running child, how that compares with
// BullMQ on its own, how many no-op tasks per second the worker gets through, and what the machine's fork
// ceiling and a jsforce-loading child cost. Everything runs in this one process against the local Postgres
// and Redis (loopback only), in a throw-away Postgres schema and Redis key prefix, and is cleaned up after.
//
//   npm run bench:dispatch
//   = npx tsc -p bench/tsconfig.dispatch.json && node dist-bench/bench/dispatch.js
//   (npx tsc -p bench/tsconfig.json, which builds every benchmark in bench/, works as well)
//
// See bench/README.md for what each figure means. Tunables (environment): BENCH_DATABASE_URL, BENCH_REDIS_URL,
// BENCH_LATENCY_TASKS (50), BENCH_LATENCY_BUDGET_SECONDS (45), BENCH_THROUGHPUT_TASKS (100),
// BENCH_THROUGHPUT_BUDGET_SECONDS (15), BENCH_BULLMQ_JOBS (200), BENCH_FORK_SECONDS (3), BENCH_ROUNDS (3), BENCH_STARTUP_SAMPLES (6),
// BENCH_STARTUP_BUDGET_SECONDS (20), BENCH_DEADLINE_SECONDS (300).
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { createWorkerHost } from '../src/cli/worker-command.js';
import { migrate } from '../src/db/migrate.js';
import { buildModuleBundle, bundleSpecs } from '../src/scripts/build-module-bundles.js';
import type { PrismaClient } from '../src/db/prisma.js';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { loadEnv } from '../src/env.js';
import { allTaskEventsChannel, type TaskEventMessage } from '../src/events/task-event-bus.js';
import type { TaskQueues } from '../src/queues/task-queues.js';
import { waitForRedis } from '../src/redis.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import type { Services } from '../src/services.js';
import { TaskLifecycle } from '../src/domain/tasks/task-lifecycle.js';
import { buildChildSnapshotScript } from '../src/scripts/build-child-snapshot.js';
import { ChildLauncher, childEntryPoint, childEnvironment } from '../src/workers/child-launcher.js';
import { prepareChildSnapshot, type ChildSnapshot } from '../src/workers/child-snapshot/child-snapshot.js';
import { ChildSession } from '../src/workers/child-session.js';
import { TaskExecutor } from '../src/workers/task-executor.js';
import type { RunRequest } from '../src/workers/ipc-protocol.js';
import { parseConcurrency, parseQueues } from '../src/workers/worker-config.js';
import type { WorkerHost } from '../src/workers/worker-host.js';
import { deleteKeys, dropSchema } from './lib/cleanup.js';
import { baseDatabaseUrl, intEnv, redisUrl, sleep, withTimeout } from './lib/env.js';
import { machineCpu, ownCpuMs, postgresPortsOf, serverProcesses, statFields, statMs } from './lib/procfs.js';
import { CpuProfiler, selfTimeByPackage, selfTimes } from './lib/profile.js';
import { heading, labelledLine, loadAverages, ms, printEnd, tableHeader } from './lib/report.js';
import { quantile } from './lib/stats.js';

// ---------------------------------------------------------------------------------------------- settings


const latencyTasks = intEnv('BENCH_LATENCY_TASKS', 50);
const throughputTasks = intEnv('BENCH_THROUGHPUT_TASKS', 100);
const bullJobs = intEnv('BENCH_BULLMQ_JOBS', 200);
const forkSeconds = intEnv('BENCH_FORK_SECONDS', 3);
/** Rounds of parts 4 and 3, alternating. */
const rounds = Math.max(1, intEnv('BENCH_ROUNDS', 3));
// Child CPU varies by tens of percent from one fork to the next on a shared machine: six samples once put a
// jsforce child within 1 % of an empty one, twelve hold its p50 steadier.
const startupSamples = intEnv('BENCH_STARTUP_SAMPLES', 12);
/** The latency phase stops taking samples after this long (but not before 15 per mode). */
const latencyBudgetSeconds = intEnv('BENCH_LATENCY_BUDGET_SECONDS', 45);
/** Each throughput run stops submitting after this long (but not before 10 tasks). */
const throughputBudgetSeconds = intEnv('BENCH_THROUGHPUT_BUDGET_SECONDS', 15);
/** The start-up samples stop after this long (but not before 3 of each). */
const startupBudgetSeconds = intEnv('BENCH_STARTUP_BUDGET_SECONDS', 35);
const deadlineSeconds = intEnv('BENCH_DEADLINE_SECONDS', 300);
/** BENCH_PROFILE=1: the V8 CPU profiler runs in this process during each throughput round (adds overhead). */
const profileThroughput = process.env.BENCH_PROFILE === '1';
const warmupTasks = 3;
/** Idle time between sequential tasks, so the previous child has exited and the worker is idle. */
const idleGapMs = 25;
const noopParams = { steps: 1, stepMs: 0 };

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
const emptyChild = fileURLToPath(new URL('./children/empty-child.js', import.meta.url));
const emptyCommonJsChild = fileURLToPath(new URL('./children/empty-child-commonjs.cjs', import.meta.url));
const jsforceChild = fileURLToPath(new URL('./children/jsforce-child.js', import.meta.url));
const vaultChild = fileURLToPath(new URL('./children/vault-child.js', import.meta.url));
const snapshotJsforceChild = fileURLToPath(new URL('./children/snapshot-jsforce-child.js', import.meta.url));
const httpsChild = fileURLToPath(new URL('./children/https-child.js', import.meta.url));
/** jsforce's core and Metadata API: what a Metadata API operation needs, here loaded plainly with import(). */
const salesforceModules = ['jsforce/lib/core.js', 'jsforce/lib/api/metadata.js'];
const taskChild = childEntryPoint();

/** What ChildLauncher passes to a task child (child-launcher.ts, childEnvironment): the same keys here. */
function launcherEnvironment(drop: string[] = []): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'LANG', 'TZ', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'];
  return Object.fromEntries(keep.filter((key) => process.env[key] !== undefined && !drop.includes(key)).map((key) => [key, process.env[key]]));
}

// ----------------------------------------------------------------------------------------------- helpers

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with Date values from Postgres/Prisma. */
const epochNow = () => performance.timeOrigin + performance.now();

const p50 = (values: number[]) => quantile(values, 0.5);
const p95 = (values: number[]) => quantile(values, 0.95);
const pp = (values: number[], digits = 1) => `p50 ${ms(p50(values), digits).padStart(9)}   p95 ${ms(p95(values), digits).padStart(9)}`;

const line = labelledLine(58);

// --------------------------------------------------------------------------------- CPU accounting (/proc)

interface CpuSnapshot {
  /** This process, user + system, ms. */
  self: number;
  /** Children of this process that have exited and been reaped (the task children), ms. */
  children: number;
  /** Postgres backends serving this process (its pool's connections), ms. */
  postgres: number;
  redis: number;
  /** Whole machine: busy and total CPU time over all cores, ms. */
  machineBusy: number;
  machineTotal: number;
}

interface RawCpu {
  self: number;
  children: number;
  /** CPU ms by pid of postgres and redis-server processes. */
  byPid: Map<number, { comm: string; ms: number }>;
  machineBusy: number;
  machineTotal: number;
}

function cpuSnapshot(): RawCpu {
  const self = statFields('/proc/self/stat');
  const ports = postgresPortsOf('self');
  const byPid = new Map<number, { comm: string; ms: number }>();
  for (const [pid, { comm, ms, port }] of serverProcesses()) {
    // Only the Postgres backends serving this process (its pool's connections); every redis-server.
    if (comm === 'postgres' && !ports.has(port!)) continue;
    byPid.set(pid, { comm, ms });
  }
  const machine = machineCpu();
  return { self: ownCpuMs(self), children: statMs(self, 16) + statMs(self, 17), byPid, machineBusy: machine.busy, machineTotal: machine.total };
}

function cpuDelta(a: RawCpu, b: RawCpu): CpuSnapshot {
  let postgres = 0;
  let redis = 0;
  for (const [pid, after] of b.byPid) {
    // A backend first seen at the end was opened by this process's pool during the interval: all of it counts.
    const before = a.byPid.get(pid)?.comm === after.comm ? a.byPid.get(pid)!.ms : after.comm === 'postgres' ? 0 : after.ms;
    if (after.comm === 'postgres') postgres += after.ms - before;
    else redis += after.ms - before;
  }
  return {
    self: b.self - a.self,
    children: b.children - a.children,
    postgres,
    redis,
    machineBusy: b.machineBusy - a.machineBusy,
    machineTotal: b.machineTotal - a.machineTotal,
  };
}

// ------------------------------------------------------------------------------------ forking bare children

interface ForkResult {
  /** fork() called → 'ready' received. */
  readyMs: number;
  /** fork() called → 'exit'. */
  exitMs: number;
  /** The child's own CPU time (user + system) when it said ready, if it reported it. */
  cpuMs: number | null;
  /** How long the fork() call itself blocked this process's event loop. */
  forkSyncMs: number;
  /** Where a jsforce or node-vault child took the library from (module-bundle.ts's bundleState), if it said. */
  from?: unknown;
}

/**
 * Forks `file` exactly as ChildLauncher does (no execArgv, launcher environment, IPC, JSON serialisation),
 * waits for its first message and its exit. For the real child-main.js, `onReady` decides what to do next
 * (send it a run, or disconnect so it exits).
 */
function forkOnce(file: string, env: NodeJS.ProcessEnv, onReady?: (child: ReturnType<typeof fork>) => void, args: string[] = [], execArgv: string[] = []): Promise<ForkResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = fork(file, args, { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const forkSyncMs = performance.now() - t0;
    let readyMs = NaN;
    let cpuMs: number | null = null;
    let from: unknown;
    child.on('message', (message: { t?: string; cpu?: { user: number; system: number }; from?: unknown }) => {
      if (message.t !== 'ready' || !Number.isNaN(readyMs)) return;
      readyMs = performance.now() - t0;
      if (message.cpu) cpuMs = (message.cpu.user + message.cpu.system) / 1000;
      from = message.from;
      onReady?.(child);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (Number.isNaN(readyMs)) return reject(new Error(`${file} exited before ready (code ${code}, signal ${signal})`));
      resolve({ readyMs, exitMs: performance.now() - t0, cpuMs, forkSyncMs, from });
    });
  });
}

/** Runs `once` with `inFlight` lanes for `seconds`; returns completions per second. */
async function ceiling(once: () => Promise<ForkResult>, seconds: number, inFlight = 2): Promise<{ perSecond: number; count: number; seconds: number; forkSync: number[] }> {
  await once(); // warm the page cache
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let count = 0;
  const forkSync: number[] = [];
  const lane = async () => {
    while (performance.now() < deadline) {
      forkSync.push((await once()).forkSyncMs);
      count += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = (performance.now() - started) / 1000;
  return { perSecond: count / elapsed, count, seconds: elapsed, forkSync };
}

/** How a worker forks a task child: from the child snapshot when there is one (then in exactly its environment). */
const fromSnapshot = (snapshot: ChildSnapshot | null) => (snapshot ? ['--snapshot-blob', snapshot.blob] : []);
const taskChildEnvironment = (snapshot: ChildSnapshot | null) => (snapshot ? childEnvironment() : launcherEnvironment());

/** child-main.js running a no-op DIAGNOSTIC with no control plane around it: what a task child costs alone. */
function taskChildOnce(snapshot: ChildSnapshot | null = null): Promise<ForkResult> {
  return forkOnce(taskChild, taskChildEnvironment(snapshot), (child) => {
    // Built loosely and cast: RunRequest is still gaining fields (files); the no-op DIAGNOSTIC uses none of them.
    const request = {
      taskId: '00000000-0000-0000-0000-000000000000',
      type: 'DIAGNOSTIC',
      attempt: 1,
      maxAttempts: 1,
      params: noopParams,
      org: { alias: 'bench', instanceUrl: 'https://bench.my.salesforce.com' },
      grant: { kind: 'ipc', token: 'unused', expiresAt: new Date(Date.now() + 60_000).toISOString() },
      files: { artifactDir: tmpdir() },
    } as unknown as RunRequest;
    child.send({ t: 'run', request });
  }, [], fromSnapshot(snapshot));
}

/** child-main.js started and told to go away once ready (it exits on disconnect): its start-up alone. */
function taskChildStartup(snapshot: ChildSnapshot | null = null): Promise<ForkResult> {
  return forkOnce(taskChild, taskChildEnvironment(snapshot), (child) => child.disconnect(), [], fromSnapshot(snapshot));
}

/**
 * The product's child snapshot, as a worker makes it (for dist-bench/, whose script is bundled here as `npm run
 * build` bundles dist/'s), and one of the same preload with snapshot-jsforce-child.ts's measuring main function.
 */
async function prepareSnapshots(): Promise<{ product: ChildSnapshot | null; jsforce: ChildSnapshot | null }> {
  const attempt = async (what: string, make: () => Promise<ChildSnapshot>) => {
    try {
      const snapshot = await make();
      line(what, snapshot.blob);
      return snapshot;
    } catch (error) {
      line(what, `NONE: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  };
  await buildChildSnapshotScript();
  const jsforceScript = snapshotJsforceChild.replace(/\.js$/, '.cjs');
  await buildChildSnapshotScript({ input: snapshotJsforceChild, output: jsforceScript });
  return {
    product: await attempt('child snapshot (task children)', () => prepareChildSnapshot({ entry: taskChild, env: childEnvironment() })),
    jsforce: await attempt('child snapshot (measuring jsforce)', () => prepareChildSnapshot({ entry: snapshotJsforceChild, env: childEnvironment(), script: jsforceScript })),
  };
}


// ------------------------------------------------------------------------- dispatch-path trace (bench-only)
//
// Wraps a few methods of TaskLifecycle, ChildLauncher and ChildSession on their prototypes (in this process
// only; nothing in src/ changes) to time-stamp each step of a task's dispatch, keyed by task id.

const traces = new Map<string, Record<string, number>>();

function mark(taskId: string, step: string, at = epochNow()): void {
  let trace = traces.get(taskId);
  if (!trace) traces.set(taskId, (trace = {}));
  if (!(step in trace)) trace[step] = at;
}

interface ChildInfo {
  forkStart: number;
  forkEnd: number;
  readyAt?: number;
  takeStart?: number;
  takeEnd?: number;
  /** Fork time of the replacement spare forked inside take(), if any. */
  replacementForkMs?: number;
}

/** Every query this process sends to Postgres (through node-postgres, which Prisma's pg adapter uses). */
const queryLog: Array<{ at: number; sql: string }> = [];

function instrument(): void {
  const client = pg.Client.prototype as unknown as { query: (...args: any[]) => unknown };
  const query = client.query;
  client.query = function (this: unknown, ...args: any[]) {
    const first = args[0] as string | { text?: string } | undefined;
    queryLog.push({ at: epochNow(), sql: typeof first === 'string' ? first : (first?.text ?? '?') });
    return query.apply(this, args);
  };

  const lifecycle = TaskLifecycle.prototype as unknown as Record<string, (...args: any[]) => Promise<unknown>>;
  const keyOf: Record<string, (args: any[]) => string> = {
    load: (args) => args[0],
    claim: (args) => args[0],
    progress: (args) => args[0],
    succeed: (args) => args[0],
  };
  for (const [name, key] of Object.entries(keyOf)) {
    const original = lifecycle[name]!;
    lifecycle[name] = async function (this: unknown, ...args: any[]) {
      const id = key(args);
      mark(id, `${name}:start`);
      try {
        return await original.apply(this, args);
      } finally {
        mark(id, `${name}:end`);
      }
    };
  }

  const executor = TaskExecutor.prototype as unknown as { process: (...args: any[]) => Promise<unknown> };
  const process_ = executor.process;
  executor.process = function (this: unknown, ...args: any[]) {
    mark((args[0] as { data: { taskId: string } }).data.taskId, 'pickup');
    return process_.apply(this, args);
  };

  const launcher = ChildLauncher.prototype as unknown as Record<string, (...args: any[]) => any>;
  const launch = launcher.launch!;
  let lastForkMs = 0;
  launcher.launch = function (this: unknown, ...args: any[]) {
    const forkStart = epochNow();
    const child = launch.apply(this, args) as { ready: Promise<void>; bench?: ChildInfo };
    const info: ChildInfo = { forkStart, forkEnd: epochNow() };
    lastForkMs = info.forkEnd - forkStart;
    child.ready.then(() => (info.readyAt = epochNow()), () => undefined);
    child.bench = info;
    return child;
  };
  const take = launcher.take!;
  launcher.take = function (this: unknown, ...args: any[]) {
    const takeStart = epochNow();
    lastForkMs = 0;
    const child = take.apply(this, args) as { bench?: ChildInfo; wasSpare: boolean };
    if (child.bench) {
      child.bench.takeStart = takeStart;
      child.bench.takeEnd = epochNow();
      // take() forks the replacement spare after choosing the child: the last fork it made, unless that was
      // the child itself (no spare).
      child.bench.replacementForkMs = child.wasSpare ? lastForkMs : 0;
    }
    return child;
  };

  const session = ChildSession.prototype as unknown as { run: (...args: any[]) => Promise<unknown>; send: (...args: any[]) => void };
  const send = session.send;
  session.send = function (this: unknown, ...args: any[]) {
    const message = args[0] as { t?: string; request?: RunRequest };
    if (message.t === 'run' && message.request) mark(message.request.taskId, 'run.sent');
    return send.apply(this, args);
  };
  const run = session.run;
  session.run = function (this: { child?: { ready: Promise<void>; process: NodeJS.EventEmitter; bench?: ChildInfo } }, ...args: any[]) {
    const id = (args[0] as RunRequest).taskId;
    mark(id, 'session.run');
    const child = this.child;
    if (child) {
      const info = child.bench;
      if (info) {
        mark(id, 'fork:start', info.forkStart);
        mark(id, 'fork:end', info.forkEnd);
        if (info.takeStart !== undefined) mark(id, 'take:start', info.takeStart);
        if (info.takeEnd !== undefined) mark(id, 'take:end', info.takeEnd);
        mark(id, 'take.replacementFork', info.replacementForkMs ?? 0);
      }
      child.ready.then(() => {
        mark(id, 'child.readyObserved');
        if (info?.readyAt !== undefined) mark(id, 'child.ready', info.readyAt);
      }, () => undefined);
      child.process.on('message', (message: { t?: string }) => mark(id, `child.${message.t}`));
      child.process.once('exit', () => mark(id, 'child.exit'));
    }
    return run.apply(this, args);
  };
}

/** Segments of the dispatch path, each from one mark to another; p50 over the tasks that have both. */
const traceSegments: Array<[string, string, string]> = [
  ['submitTask call (validate, insert task + event, enqueue)', 'submit', 'submit.returned'],
  ['submitTask returned → job picked up (BullMQ)', 'submit.returned', 'pickup'],
  ['job picked up → take() (a child, before the claim)', 'pickup', 'take:start'],
  ['take(): synchronous fork() inside take', 'take:start', 'take:end'],
  ['claim: one statement (RUNNING + pid, returns the org)', 'claim:start', 'claim:end'],
  ["claim end → 'run' sent (files, grant, child ready)", 'claim:end', 'run.sent'],
  ["  of which waiting for the child's ready", 'session.run', 'child.readyObserved'],
  ['run sent → PROGRESS message (child imports op, runs)', 'run.sent', 'child.progress'],
  ['PROGRESS message → its transaction ends', 'child.progress', 'progress:end'],
  ['PROGRESS message → done message', 'child.progress', 'child.done'],
  ['done message → child exit observed', 'child.done', 'child.exit'],
  ['child exit → succeed transaction ends', 'child.exit', 'succeed:end'],
  ['TOTAL submit → succeed transaction ends', 'submit', 'succeed:end'],
];

/** Postgres queries sent between two marks of each task (sequential tasks only: nothing else overlaps). */
function queriesBetween(ids: string[], from: string, to: string): number[] {
  const counts: number[] = [];
  for (const id of ids) {
    const trace = traces.get(id);
    const a = trace?.[from];
    const b = trace?.[to];
    if (a === undefined || b === undefined) continue;
    counts.push(queryLog.filter((q) => q.at >= a && q.at <= b).length);
  }
  return counts;
}

function shortSql(sql: string): string {
  return sql.replace(/\s+/g, ' ').replace(/"[a-z_0-9]+"\./gi, '').slice(0, 70);
}

function segmentValues(ids: string[], from: string, to: string): number[] {
  const values: number[] = [];
  for (const id of ids) {
    const trace = traces.get(id);
    if (trace?.[from] !== undefined && trace[to] !== undefined) values.push(trace[to]! - trace[from]!);
  }
  return values;
}

// ------------------------------------------------------------------------------------ the Switchyard stack

interface Stack {
  runtime: Runtime;
  prisma: PrismaClient;
  redis: Redis;
  queues: TaskQueues;
  services: Services;
  prefix: string;
  schema: string;
  watcher: EventWatcher;
  close(): Promise<void>;
}

const logger = pino({ level: 'silent' });

/**
 * One process holding API services and workers, assembled as `switchyard start` does (createRuntime from an
 * Env, createWorkerHost from the worker command), in a throw-away schema and Redis prefix. `spare` sets
 * SWITCHYARD_SPARE_CHILD; every other setting is the production default.
 */
async function startStack(spare: boolean): Promise<Stack> {
  const suffix = randomBytes(4).toString('hex');
  const schema = `bench_dispatch_${suffix}`;
  const url = new URL(baseDatabaseUrl);
  url.searchParams.set('schema', schema);
  const databaseUrl = url.toString();
  await migrate(databaseUrl, migrationsDir);
  const prefix = `sybench-${suffix}`;
  const env = loadEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    SWITCHYARD_QUEUE_PREFIX: prefix,
    SWITCHYARD_SECRET_KEY: randomBytes(32).toString('hex'),
    SWITCHYARD_SPARE_CHILD: String(spare),
    SWITCHYARD_CHECK_ORGS: 'false', // registering the org must not queue an ORG_CHECK
    SWITCHYARD_ARTIFACT_DIR: join(tmpdir(), `${prefix}-artifacts`), // never written: no task here uses files
  });
  const runtime = await createRuntime(env, logger);
  if (!(await waitForRedis(runtime.redis, 5000))) throw new Error(`Redis at ${redisUrl} is not reachable`);
  const { prisma, redis, services } = runtime;
  const watcher = new EventWatcher(prefix);
  await watcher.start();
  await services.orgs.register(cliPrincipal, {
    alias: 'bench',
    kind: 'DEVELOPER',
    credentials: { instanceUrl: 'https://bench.my.salesforce.com', refreshToken: '5Aep861bench' },
  });
  return {
    runtime,
    prisma,
    redis,
    queues: services.queues,
    services,
    prefix,
    schema,
    watcher,
    async close() {
      watcher.close();
      await runtime.close();
      await deleteKeys(redisUrl, prefix);
      await dropSchema(baseDatabaseUrl, schema);
    },
  };
}

async function startWorker(stack: Stack): Promise<WorkerHost> {
  const { env } = stack.runtime;
  const host = createWorkerHost(stack.runtime, logger, {
    queues: parseQueues(env.SWITCHYARD_WORKER_QUEUES),
    concurrency: parseConcurrency(env.SWITCHYARD_WORKER_CONCURRENCY),
  });
  await host.start();
  await host.launcher.snapshotSettled; // children then start as a worker's do once it has started
  return host;
}

/**
 * The spare child's readiness, read from the launcher's private state: the benchmark waits for it so a
 * "with spare" sample measures what the spare is for (an idle worker whose spare has booted). Null when there
 * is no spare (or the internals moved; the idle gap then has to do).
 */
function spareReady(host: WorkerHost): Promise<void> | null {
  const launcher = (host as unknown as { launcher?: { spare?: { ready?: Promise<void> } | null } }).launcher;
  return launcher?.spare?.ready ?? null;
}

/** Follows every task event of the stack over Redis pub/sub, to know when a task has settled. */
class EventWatcher {
  private readonly subscriber = new Redis(redisUrl, { maxRetriesPerRequest: null });
  private readonly settledAt = new Map<string, { status: string; at: number }>();
  private readonly waiters = new Map<string, (value: { status: string; at: number }) => void>();

  constructor(private readonly prefix: string) {}

  async start(): Promise<void> {
    await this.subscriber.subscribe(allTaskEventsChannel(this.prefix));
    this.subscriber.on('message', (_channel, raw: string) => {
      const at = epochNow();
      const event = JSON.parse(raw) as TaskEventMessage;
      const status = event.kind === 'STATUS' ? (event.payload as { status?: string }).status : undefined;
      if (status !== 'SUCCEEDED' && status !== 'FAILED' && status !== 'CANCELLED') return;
      const settled = { status, at };
      this.settledAt.set(event.taskId, settled);
      this.waiters.get(event.taskId)?.(settled);
      this.waiters.delete(event.taskId);
    });
  }

  settled(taskId: string, timeoutMs: number): Promise<{ status: string; at: number }> {
    const known = this.settledAt.get(taskId);
    if (known) return Promise.resolve(known);
    return withTimeout(new Promise((resolve) => this.waiters.set(taskId, resolve)), timeoutMs, `task ${taskId} to settle`);
  }

  close(): void {
    this.subscriber.disconnect();
  }
}

function submitNoop(stack: Stack) {
  return stack.services.tasks.submit(cliPrincipal, { type: 'DIAGNOSTIC', org: 'bench', params: noopParams });
}

// ----------------------------------------------------------------------------- 1. submit → RUNNING latency

interface LatencyRun {
  /** submitTask call → RUNNING STATUS event createdAt. */
  running: number[];
  /** submitTask call → the child's first report (its PROGRESS event) createdAt. */
  childReport: number[];
  /** submitTask call → SUCCEEDED STATUS event createdAt. */
  succeeded: number[];
  /** BullMQ's own view inside Switchyard: job.processedOn - job.timestamp (1 ms resolution). */
  bullHandOver: number[];
  /** Task ids measured, for the dispatch-path trace. */
  ids: string[];
  failed: number;
}

/**
 * Sequential tasks to two idle workers, alternately: one with the spare child, one without, each with its own
 * stack (schema + prefix), so drifting load on the machine affects both modes alike.
 */
async function latencyPhase(spareStack: Stack, plainStack: Stack, count: number): Promise<{ spare: LatencyRun; plain: LatencyRun }> {
  const modes = [
    { stack: spareStack, host: await startWorker(spareStack), samples: [] as Array<{ id: string; submitAt: number }>, failed: 0 },
    { stack: plainStack, host: await startWorker(plainStack), samples: [] as Array<{ id: string; submitAt: number }>, failed: 0 },
  ];
  const budgetEnds = performance.now() + latencyBudgetSeconds * 1000;
  try {
    for (let i = 0; i < warmupTasks + count; i += 1) {
      if (i >= warmupTasks + 15 && performance.now() > budgetEnds) break; // time budget spent
      for (const mode of modes) {
        // Every host idle, the spare one's spare booted: no replacement spare is starting behind either mode.
        for (const { host } of modes) {
          const spare = spareReady(host);
          if (spare) await withTimeout(spare.catch(() => undefined), 30_000, 'the spare child');
        }
        await sleep(idleGapMs);
        const submitAt = epochNow();
        const task = await submitNoop(mode.stack);
        mark(task.id, 'submit', submitAt);
        mark(task.id, 'submit.returned');
        const settled = await mode.stack.watcher.settled(task.id, 30_000);
        if (settled.status !== 'SUCCEEDED') mode.failed += 1;
        if (i >= warmupTasks) mode.samples.push({ id: task.id, submitAt });
      }
    }
  } finally {
    await Promise.all(modes.map((mode) => mode.host.close(5000)));
  }
  const [spare, plain] = await Promise.all(modes.map((mode) => latencyFigures(mode.stack, mode.samples, mode.failed)));
  return { spare: spare!, plain: plain! };
}

async function latencyFigures(stack: Stack, samples: Array<{ id: string; submitAt: number }>, failed: number): Promise<LatencyRun> {
  const ids = samples.map((sample) => sample.id);
  const [tasks, events] = await Promise.all([
    stack.prisma.task.findMany({ where: { id: { in: ids } }, select: { id: true, jobId: true } }),
    stack.prisma.taskEvent.findMany({ where: { taskId: { in: ids } }, orderBy: [{ taskId: 'asc' }, { seq: 'asc' }] }),
  ]);
  const run: LatencyRun = { running: [], childReport: [], succeeded: [], bullHandOver: [], ids, failed };
  for (const sample of samples) {
    const own = events.filter((event) => event.taskId === sample.id);
    const statusAt = (status: string) =>
      own.find((event) => event.kind === 'STATUS' && (event.payload as { status?: string }).status === status)?.createdAt.getTime() ?? NaN;
    run.running.push(statusAt('RUNNING') - sample.submitAt);
    run.childReport.push((own.find((event) => event.kind === 'PROGRESS')?.createdAt.getTime() ?? NaN) - sample.submitAt);
    run.succeeded.push(statusAt('SUCCEEDED') - sample.submitAt);
    const jobId = tasks.find((row) => row.id === sample.id)?.jobId;
    const job = jobId ? await stack.queues.get('NORMAL').getJob(jobId) : undefined;
    if (job?.processedOn) run.bullHandOver.push(job.processedOn - job.timestamp);
  }
  return run;
}

// -------------------------------------------------------------------------- 2. BullMQ enqueue → active

async function bullmqPhase(stack: Stack, count: number): Promise<{ latency: number[]; add: number[] }> {
  const name = 'bench-baseline';
  // Same shapes as Switchyard's: the queue on the command connection, the worker on a retry-forever one.
  const queue = new Queue(name, { connection: stack.redis, prefix: stack.prefix });
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const activeAt = new Map<string, number>();
  const completed = new Map<string, () => void>();
  const worker = new Worker(
    name,
    async (job) => {
      activeAt.set(job.id!, performance.now());
    },
    { connection, prefix: stack.prefix, concurrency: 2, lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 1 },
  );
  worker.on('completed', (job) => {
    completed.get(job.id!)?.();
    completed.delete(job.id!);
  });
  const latency: number[] = [];
  const add: number[] = [];
  try {
    await worker.waitUntilReady();
    for (let i = 0; i < 10 + count; i += 1) {
      await sleep(2);
      const jobId = `b${i}`;
      const done = new Promise<void>((resolve) => completed.set(jobId, resolve));
      const t0 = performance.now();
      // The options TaskQueues.enqueue uses for a priority-50 task.
      await queue.add(
        'DIAGNOSTIC',
        { taskId: jobId },
        { jobId, priority: 51, delay: 0, attempts: 3, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } },
      );
      const t1 = performance.now();
      await withTimeout(done, 10_000, `BullMQ job ${jobId}`);
      if (i >= 10) {
        latency.push(activeAt.get(jobId)! - t0);
        add.push(t1 - t0);
      }
    }
  } finally {
    await worker.close();
    await queue.close();
    connection.disconnect();
  }
  return { latency, add };
}

// ------------------------------------------------------------------------------- 3. end-to-end throughput

interface ThroughputRun {
  tasks: number;
  seconds: number;
  perSecond: number;
  failed: number;
  cpu: CpuSnapshot;
}

async function throughputPhase(stack: Stack, count: number): Promise<ThroughputRun> {
  const host = await startWorker(stack);
  try {
    // One warm-up task, then start from an idle worker (spare booted, if any).
    await stack.watcher.settled((await submitNoop(stack)).id, 30_000);
    const spare = spareReady(host);
    if (spare) await withTimeout(spare.catch(() => undefined), 30_000, 'the spare child');
    await sleep(100);
    const profiler = profileThroughput ? new CpuProfiler(1000, `dispatch-throughput-${stack.prefix}`) : null;
    await profiler?.start();
    const before = cpuSnapshot();
    const started = epochNow();
    // Keep the queue ahead of the worker (a backlog of waiting tasks, so it is never idle) until `count` tasks
    // are in, or the time budget is spent (never fewer than 10 tasks).
    const budgetEnds = performance.now() + throughputBudgetSeconds * 1000;
    const backlog = 6;
    const pending: Array<Promise<{ status: string; at: number }>> = [];
    let settledCount = 0;
    let wake: (() => void) | undefined;
    while (pending.length < count && (pending.length < 10 || performance.now() < budgetEnds)) {
      if (pending.length - settledCount >= backlog) {
        await new Promise<void>((resolve) => (wake = resolve)); // until the next task settles
        continue;
      }
      const task = await submitNoop(stack);
      pending.push(
        stack.watcher.settled(task.id, 120_000).then((result) => {
          settledCount += 1;
          const resume = wake;
          wake = undefined;
          resume?.();
          return result;
        }),
      );
    }
    const settled = await Promise.all(pending);
    const finished = Math.max(...settled.map((s) => s.at));
    const cpu = cpuDelta(before, cpuSnapshot());
    const taken = await profiler?.stop();
    if (taken) {
      const top = selfTimeByPackage(selfTimes(taken.profile).functions).filter((entry) => entry.name !== '(idle)').slice(0, 8);
      line(`  CPU profile of this process (${stack.prefix})`, `${taken.file}: ${top.map((entry) => `${entry.name} ${entry.selfMs.toFixed(0)} ms`).join(', ')}`);
    }
    const seconds = (finished - started) / 1000;
    return { tasks: settled.length, seconds, perSecond: settled.length / seconds, failed: settled.filter((s) => s.status !== 'SUCCEEDED').length, cpu };
  } finally {
    await host.close(5000);
  }
}

function printCpu(cpu: CpuSnapshot, tasks: number, seconds: number): void {
  const per = (value: number) => `${(value / tasks).toFixed(1)} ms/task`;
  const share = (value: number) => `${((value / (seconds * 1000)) * 100).toFixed(0)}% of one core`;
  line('  CPU: this process (API + worker + BullMQ + Prisma)', `${per(cpu.self).padStart(14)}   ${share(cpu.self)}`);
  line('  CPU: task children (reaped)', `${per(cpu.children).padStart(14)}   ${share(cpu.children)}`);
  line('  CPU: postgres backends serving this process', `${per(cpu.postgres).padStart(14)}   ${share(cpu.postgres)}`);
  line('  CPU: redis-server (shared with other clients)', `${per(cpu.redis).padStart(14)}   ${share(cpu.redis)}`);
  const busy = cpu.machineTotal > 0 ? (cpu.machineBusy / cpu.machineTotal) * 100 : NaN;
  const ours = cpu.self + cpu.children + cpu.postgres + cpu.redis;
  line('  CPU: whole machine busy (all processes, all cores)', `${busy.toFixed(0)}%  (ours ${((ours / Math.max(1, cpu.machineBusy)) * 100).toFixed(0)}% of that)`);
}

// ------------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const hardStop = setTimeout(() => {
    console.error(`\nBenchmark exceeded BENCH_DEADLINE_SECONDS=${deadlineSeconds}; aborting (the bench_dispatch_* schema and sybench-* keys may be left behind).`);
    process.exit(2);
  }, deadlineSeconds * 1000);
  hardStop.unref();
  const began = performance.now();

  console.log('Switchyard dispatch benchmark');
  line('node / cores', `${process.version} / ${cpus().length}`);
  line('load average at start (1/5/15 min)', loadAverages());
  line('task child entry point', taskChild);
  line('NODE_EXTRA_CA_CERTS (passed to task children)', process.env.NODE_EXTRA_CA_CERTS ?? '(unset)');
  if (loadavg()[0]! > cpus().length) {
    console.log(`  WARNING: the 1-minute load average exceeds the core count: other work is competing for CPU, figures will be noisy.`);
  }

  const snapshots = await prepareSnapshots();
  instrument();
  const stack = await startStack(true);
  const summary: Array<[string, string, string, string]> = [];
  let plainStack: Stack | undefined;
  try {
    plainStack = await startStack(false);
    line('Postgres schemas / Redis prefixes', `${stack.schema}, ${plainStack.schema} / ${stack.prefix}, ${plainStack.prefix}`);

    // 2 first: BullMQ on its own, the floor the dispatch path is compared with.
    heading(`2. BullMQ enqueue → active (plain Queue + Worker, empty processor, concurrency 2), ${bullJobs} sequential jobs`);
    const bull = await bullmqPhase(stack, bullJobs);
    line('queue.add() called → processor entered', pp(bull.latency, 2));
    line('queue.add() round trip alone', pp(bull.add, 2));

    heading(`1. submit → RUNNING, ${latencyTasks} sequential no-op DIAGNOSTIC tasks per mode (via TaskService.submit, in process; not GraphQL/HTTP)`);
    console.log(`  (modes alternate task by task, each on its own idle worker and stack; before every submit the previous task has SUCCEEDED and the spare has said ready; ${warmupTasks} warm-ups each not counted)`);
    const { spare: withSpare, plain: withoutSpare } = await latencyPhase(stack, plainStack, latencyTasks);
    for (const [label, run] of [
      ['spare child', withSpare],
      ['no spare child (keepSpareChild: false)', withoutSpare],
    ] as const) {
      console.log(`  -- ${label}: ${run.ids.length} tasks${run.ids.length < latencyTasks ? ' (time budget reached)' : ''}${run.failed ? `  (${run.failed} task(s) did not succeed!)` : ''}`);
      line('submitTask → RUNNING STATUS event createdAt', pp(run.running));
      line("submitTask → child's first report (PROGRESS createdAt)", pp(run.childReport));
      line('submitTask → SUCCEEDED STATUS event createdAt', pp(run.succeeded));
      line('BullMQ add → active inside Switchyard (processedOn - timestamp)', pp(run.bullHandOver));
    }
    console.log('  -- dispatch path, step by step (p50 per step; bench-side trace of src/workers, in-process clock)');
    line('step', `${'spare'.padStart(11)} ${'no spare'.padStart(11)}`);
    for (const [name, from, to] of traceSegments) {
      const a = p50(segmentValues(withSpare.ids, from, to));
      const b = p50(segmentValues(withoutSpare.ids, from, to));
      line(`  ${name}`, `${ms(a).padStart(11)} ${ms(b).padStart(11)}`);
    }
    console.log('  -- Postgres round trips per task (p50 count of queries this process sent; sequential tasks)');
    const rt: Array<[string, string, string]> = [
      ['submitTask', 'submit', 'submit.returned'],
      ['job picked up → run sent to the child', 'pickup', 'run.sent'],
      ['PROGRESS handling', 'progress:start', 'progress:end'],
      ['settle (succeed)', 'succeed:start', 'succeed:end'],
      ['whole task', 'submit', 'succeed:end'],
    ];
    for (const [name, from, to] of rt) line(`  ${name}`, `${String(p50(queriesBetween(withSpare.ids, from, to))).padStart(11)}`);
    const sampleTrace = traces.get(withSpare.ids[Math.floor(withSpare.ids.length / 2)] ?? '');
    if (sampleTrace?.['pickup'] !== undefined && sampleTrace['run.sent'] !== undefined) {
      console.log("     statements from job pick-up to 'run' sent, one task (ms after pick-up):");
      for (const q of queryLog.filter((q) => q.at >= sampleTrace['pickup']! && q.at <= sampleTrace['run.sent']!)) {
        console.log(`       +${(q.at - sampleTrace['pickup']!).toFixed(1).padStart(6)} ms  ${shortSql(q.sql)}`);
      }
    }
    const replacement = (ids: string[]) => p50(ids.map((id) => traces.get(id)?.['take.replacementFork'] ?? NaN).filter(Number.isFinite));
    line('  (of take(): forking a replacement spare inside take())', `${ms(replacement(withSpare.ids)).padStart(11)} ${ms(replacement(withoutSpare.ids)).padStart(11)}`);

    // Parts 4 and 3 alternate, round after round, so the ceiling and the throughput it is compared with are
    // measured under the same conditions: on a shared or throttled machine, a run of a few seconds can be 10 %
    // faster or slower than the next. The goal takes the median of the per-round ratios.
    heading(`4 + 3. Fork ceiling and end-to-end throughput, alternating, ${rounds} rounds`);
    console.log('  ceiling: bare Node children, 2 in flight (fork → ready over IPC → exit), launcher options; task-child ceiling: child-main.js running a no-op DIAGNOSTIC, no DB/Redis');
    console.log(`  throughput: up to ${throughputTasks} no-op tasks (${throughputBudgetSeconds} s budget), queue kept ahead of the worker, NORMAL concurrency 2, until all SUCCEEDED`);
    const ceilings: Array<Awaited<ReturnType<typeof ceiling>>> = [];
    const childCeilings: Array<Awaited<ReturnType<typeof ceiling>>> = [];
    const spareRuns: ThroughputRun[] = [];
    const plainRuns: ThroughputRun[] = [];
    for (let round = 1; round <= rounds; round += 1) {
      const forkRound = await ceiling(() => forkOnce(emptyChild, launcherEnvironment()), forkSeconds);
      const childRound = await ceiling(() => taskChildOnce(snapshots.product), forkSeconds); // as the worker forks them
      const spareRound = await throughputPhase(stack, throughputTasks);
      const plainRound = await throughputPhase(plainStack, throughputTasks);
      ceilings.push(forkRound);
      childCeilings.push(childRound);
      spareRuns.push(spareRound);
      plainRuns.push(plainRound);
      const ratio = (run: ThroughputRun) => `${((run.perSecond / forkRound.perSecond) * 100).toFixed(0)}%`;
      line(
        `  round ${round}: ceiling / task-child ceiling / spare / no spare`,
        `${forkRound.perSecond.toFixed(1)} / ${childRound.perSecond.toFixed(1)} / ${spareRound.perSecond.toFixed(1)} (${ratio(spareRound)}) / ${plainRound.perSecond.toFixed(1)} (${ratio(plainRound)}) per s`,
      );
      for (const run of [spareRound, plainRound]) if (run.failed) console.log(`  WARNING: ${run.failed} tasks did not SUCCEED`);
    }
    const medianRound = <T>(values: T[], key: (value: T) => number): T => [...values].sort((x, y) => key(x) - key(y))[Math.floor(values.length / 2)]!;
    const forkCeiling = medianRound(ceilings, (c) => c.perSecond);
    const childCeiling = medianRound(childCeilings, (c) => c.perSecond);
    const tput = medianRound(spareRuns, (run) => run.perSecond);
    const tputNoSpare = medianRound(plainRuns, (run) => run.perSecond);
    const spareRatio = p50(spareRuns.map((run, i) => run.perSecond / ceilings[i]!.perSecond));
    const plainRatio = p50(plainRuns.map((run, i) => run.perSecond / ceilings[i]!.perSecond));
    line('empty children forked and exited per second (median)', `${forkCeiling.perSecond.toFixed(1)} /s  (${forkCeiling.count} in ${forkCeiling.seconds.toFixed(1)} s)`);
    line(
      'fork() call itself, blocking the event loop',
      `p50 ${ms(p50(ceilings.flatMap((c) => c.forkSync)))} at this process's RSS of ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB (the kernel copies the page tables)`,
    );
    line(`task children (child-main.js${snapshots.product ? ', from the snapshot' : ''}, no-op DIAGNOSTIC) per second (median)`, `${childCeiling.perSecond.toFixed(1)} /s`);
    line('tasks per second, spare child (the default; median)', `${tput.perSecond.toFixed(1)} /s  (${tput.tasks} in ${tput.seconds.toFixed(1)} s)`);
    printCpu(tput.cpu, tput.tasks, tput.seconds);
    line('tasks per second, no spare child (median)', `${tputNoSpare.perSecond.toFixed(1)} /s  (${tputNoSpare.tasks} in ${tputNoSpare.seconds.toFixed(1)} s)`);
    printCpu(tputNoSpare.cpu, tputNoSpare.tasks, tputNoSpare.seconds);

    heading(`5. Child start-up: fork → 'ready' over IPC, up to ${startupSamples} samples each (${startupBudgetSeconds} s budget), interleaved, one at a time`);
    const startup: Record<string, ForkResult[]> = { empty: [], emptyCommonJs: [], emptyNoCa: [], https: [], taskChild: [], taskChildSnapshot: [], jsforce: [], salesforce: [], switchyard: [], snapshotJsforce: [], switchyardPackages: [], vault: [], vaultSwitchyard: [] };
    const hasExtraCa = process.env.NODE_EXTRA_CA_CERTS !== undefined;
    // The bundles `npm run build` makes for dist/, made here for dist-bench/ (where these children load from).
    for (const spec of bundleSpecs) {
      const bundle = await buildModuleBundle(spec);
      line(`${spec.name} bundle (built for this run)`, `${Object.keys(bundle.entries).join(', ')}; ${bundle.files.length} files; code cache for Node ${bundle.node}`);
    }
    await forkOnce(jsforceChild, launcherEnvironment()); // warm the page cache for jsforce's files
    await forkOnce(vaultChild, launcherEnvironment()); // and node-vault's
    const startupEnds = performance.now() + startupBudgetSeconds * 1000;
    for (let i = 0; i < startupSamples; i += 1) {
      if (i >= 3 && performance.now() > startupEnds) break; // time budget spent
      startup.empty!.push(await forkOnce(emptyChild, launcherEnvironment()));
      startup.emptyCommonJs!.push(await forkOnce(emptyCommonJsChild, launcherEnvironment()));
      startup.https!.push(await forkOnce(httpsChild, launcherEnvironment()));
      if (hasExtraCa) startup.emptyNoCa!.push(await forkOnce(emptyChild, launcherEnvironment(['NODE_EXTRA_CA_CERTS'])));
      startup.taskChild!.push(await taskChildStartup());
      if (snapshots.product) startup.taskChildSnapshot!.push(await taskChildStartup(snapshots.product));
      startup.jsforce!.push(await forkOnce(jsforceChild, launcherEnvironment()));
      startup.salesforce!.push(await forkOnce(jsforceChild, launcherEnvironment(), undefined, salesforceModules));
      startup.switchyard!.push(await forkOnce(jsforceChild, launcherEnvironment(), undefined, ['--switchyard']));
      if (snapshots.jsforce) startup.snapshotJsforce!.push(await forkOnce(snapshotJsforceChild, childEnvironment(), undefined, [], fromSnapshot(snapshots.jsforce)));
      startup.switchyardPackages!.push(await forkOnce(jsforceChild, launcherEnvironment(), undefined, ['--switchyard-packages']));
      startup.vault!.push(await forkOnce(vaultChild, launcherEnvironment()));
      startup.vaultSwitchyard!.push(await forkOnce(vaultChild, launcherEnvironment(), undefined, ['--switchyard']));
    }
    const readyOf = (results: ForkResult[]) => results.map((r) => r.readyMs);
    const cpuOf = (results: ForkResult[]) => results.map((r) => r.cpuMs ?? NaN);
    /** Where the children took the library from, as each reported (jsforce-child, vault-child). */
    const fromOf = (results: ForkResult[]) => [...new Set(results.map((r) => JSON.stringify(r.from)))].join(', ');
    line('empty child (launcher env)', `${pp(readyOf(startup.empty!))}   own CPU p50 ${ms(p50(cpuOf(startup.empty!)))}`);
    line("  the same, loading Node's HTTPS stack", `${pp(readyOf(startup.https!))}   own CPU p50 ${ms(p50(cpuOf(startup.https!)))}`);
    line('  the same as a CommonJS main (no ES module loader)', `${pp(readyOf(startup.emptyCommonJs!))}   own CPU p50 ${ms(p50(cpuOf(startup.emptyCommonJs!)))}`);
    if (hasExtraCa) line('empty child without NODE_EXTRA_CA_CERTS', `${pp(readyOf(startup.emptyNoCa!))}   own CPU p50 ${ms(p50(cpuOf(startup.emptyNoCa!)))}`);
    line('task child (child-main.js) until ready', pp(readyOf(startup.taskChild!)));
    if (snapshots.product) line('  the same from the child snapshot (as workers start them)', pp(readyOf(startup.taskChildSnapshot!)));
    line("child that imports 'jsforce' (all APIs)", `${pp(readyOf(startup.jsforce!))}   own CPU p50 ${ms(p50(cpuOf(startup.jsforce!)))}`);
    line("child that import()s jsforce's core + Metadata API", `${pp(readyOf(startup.salesforce!))}   own CPU p50 ${ms(p50(cpuOf(startup.salesforce!)))}`);
    line('child that loads them as Switchyard does (load-jsforce.ts)', `${pp(readyOf(startup.switchyard!))}   own CPU p50 ${ms(p50(cpuOf(startup.switchyard!)))}`);
    line('  loaded from (as each child reported)', fromOf(startup.switchyard!));
    if (snapshots.jsforce) {
      line('  the same from the child snapshot, then HTTPS loaded', `${pp(readyOf(startup.snapshotJsforce!))}   own CPU p50 ${ms(p50(cpuOf(startup.snapshotJsforce!)))}`);
      line('    jsforce (as each child reported)', fromOf(startup.snapshotJsforce!));
    }
    line('  the same from node_modules (no bundle)', `${pp(readyOf(startup.switchyardPackages!))}   own CPU p50 ${ms(p50(cpuOf(startup.switchyardPackages!)))}`);
    line('    loaded from (as each child reported)', fromOf(startup.switchyardPackages!));
    line("child that require()s 'node-vault'", `${pp(readyOf(startup.vault!))}   own CPU p50 ${ms(p50(cpuOf(startup.vault!)))}`);
    line('child that loads it as Switchyard does (vault-unwrap.ts)', `${pp(readyOf(startup.vaultSwitchyard!))}   own CPU p50 ${ms(p50(cpuOf(startup.vaultSwitchyard!)))}`);
    line('  loaded from (as each child reported)', fromOf(startup.vaultSwitchyard!));
    const overEmpty = (results: ForkResult[]) => ({
      ready: p50(readyOf(results)) - p50(readyOf(startup.empty!)),
      cpu: p50(cpuOf(results)) - p50(cpuOf(startup.empty!)),
    });
    /**
     * The median of the per-round differences in CPU: each round forks every kind once, one right after the other,
     * so a pair shares the machine's state of the moment (a busy neighbour, the CPU's clock), which a difference of
     * two p50s taken over the whole part does not cancel.
     */
    const pairedCpuOverEmpty = (results: ForkResult[]) =>
      p50(results.map((result, i) => (result.cpuMs ?? NaN) - (startup.empty![i]?.cpuMs ?? NaN)).filter((value) => Number.isFinite(value)));
    const fullJsforceCost = overEmpty(startup.jsforce!);
    const importCost = overEmpty(startup.salesforce!);
    const jsforceCost = overEmpty(startup.switchyard!);
    const emptyCpu = p50(cpuOf(startup.empty!));
    const signed = (value: number) => `${value >= 0 ? '+' : ''}${ms(value)}`;
    const costLine = (cost: { ready: number; cpu: number }) => `${signed(cost.ready)} start-up, ${signed(cost.cpu)} CPU (${((cost.cpu / emptyCpu) * 100).toFixed(0)}% of an empty child's CPU)`;
    line("cost over an empty child: import('jsforce')", `${costLine(fullJsforceCost)}  (${startup.jsforce!.length} samples each)`);
    line('  import() of core + Metadata API', costLine(importCost));
    line('  core + Metadata API from the module bundle', `${costLine(jsforceCost)}  (a Salesforce child without the snapshot)`);
    const snapshotCost = snapshots.jsforce ? overEmpty(startup.snapshotJsforce!) : null;
    if (snapshotCost) line('  from the child snapshot, HTTPS loaded', `${costLine(snapshotCost)}  (what a Salesforce child pays)`);
    line('  the same from node_modules (no bundle)', costLine(overEmpty(startup.switchyardPackages!)));
    const vaultCost = overEmpty(startup.vaultSwitchyard!);
    line("cost over an empty child: require('node-vault')", costLine(overEmpty(startup.vault!)));
    line('  node-vault as Switchyard loads it', `${costLine(vaultCost)}  (what a child redeeming a Vault grant adds)`);

    // ------------------------------------------------------------------------------------ goals, summary
    const bullP50 = p50(bull.latency);
    const deltaRunning = p50(withSpare.running) - bullP50;
    const deltaReport = p50(withSpare.childReport) - bullP50;
    heading('Goals');
    line('p50 submit→RUNNING (spare) within 15 ms of BullMQ p50', `${ms(p50(withSpare.running))} vs ${ms(bullP50, 2)}: +${ms(deltaRunning)} → ${deltaRunning <= 15 ? 'MET' : 'NOT MET'}`);
    line("  (same, to the child's first report)", `${ms(p50(withSpare.childReport))} vs ${ms(bullP50, 2)}: +${ms(deltaReport)} → ${deltaReport <= 15 ? 'MET' : 'NOT MET'}`);
    line('throughput ≥ 0.8 × fork ceiling (median of rounds)', `${(spareRatio * 100).toFixed(0)}% of the ceiling measured in the same round → ${spareRatio >= 0.8 ? 'MET' : 'NOT MET'} (medians: ${tput.perSecond.toFixed(1)} /s vs ${forkCeiling.perSecond.toFixed(1)} /s)`);
    const taskChildCost = p50(readyOf(startup.taskChild!)) - p50(readyOf(startup.empty!));
    line('task child start-up over an empty child', `${signed(taskChildCost)} (${ms(p50(readyOf(startup.taskChild!)))} vs ${ms(p50(readyOf(startup.empty!)))}): jsforce is not loaded until an operation needs it`);
    line('  a Salesforce operation then adds (reported)', `${costLine(jsforceCost)} for jsforce core + Metadata API (import('jsforce'): ${costLine(fullJsforceCost)})`);
    // "Little more than an empty one", read as at most a tenth of an empty child's CPU.
    const pairedSnapshotCpu = snapshotCost ? pairedCpuOverEmpty(startup.snapshotJsforce!) : NaN;
    const snapshotShare = pairedSnapshotCpu / emptyCpu;
    const littleMore = snapshotShare <= 0.1;
    line(
      'Salesforce child ≤ 1.1 × an empty child (CPU)',
      snapshotCost
        ? `${signed(pairedSnapshotCpu)} CPU (${(snapshotShare * 100).toFixed(0)}%), the median of the rounds' differences, from the child snapshot, jsforce and HTTPS loaded → ${littleMore ? 'MET' : 'NOT MET'}`
        : 'no child snapshot → NOT MET',
    );
    if (snapshotCost) {
      line('  (difference of the p50s)', costLine(snapshotCost));
      const httpsCpu = pairedCpuOverEmpty(startup.https!);
      line("  of which Node's HTTPS stack (an empty child loading it)", `${signed(httpsCpu)} CPU (${((httpsCpu / emptyCpu) * 100).toFixed(0)}%): jsforce's own share ${signed(pairedSnapshotCpu - httpsCpu)}`);
    }

    summary.push(
      ['submit→RUNNING, spare', `${ms(p50(withSpare.running))} / ${ms(p95(withSpare.running))}`, `p50 ≤ BullMQ p50 + 15 ms`, deltaRunning <= 15 ? 'MET' : 'NOT MET'],
      ['submit→RUNNING, no spare', `${ms(p50(withoutSpare.running))} / ${ms(p95(withoutSpare.running))}`, '', ''],
      ['submit→child report, spare', `${ms(p50(withSpare.childReport))} / ${ms(p95(withSpare.childReport))}`, `p50 ≤ BullMQ p50 + 15 ms`, deltaReport <= 15 ? 'MET' : 'NOT MET'],
      ['submit→child report, no spare', `${ms(p50(withoutSpare.childReport))} / ${ms(p95(withoutSpare.childReport))}`, '', ''],
      ['BullMQ enqueue→active', `${ms(bullP50, 2)} / ${ms(p95(bull.latency), 2)}`, 'baseline', ''],
      ["RUNNING written → 'run' sent, spare", ms(p50(segmentValues(withSpare.ids, 'claim:end', 'run.sent'))), 'p50 (worker dispatch)', ''],
      ["RUNNING written → 'run' sent, no spare", ms(p50(segmentValues(withoutSpare.ids, 'claim:end', 'run.sent'))), 'p50 (worker dispatch)', ''],
      ['Postgres round trips per task', `${p50(queriesBetween(withSpare.ids, 'submit', 'succeed:end'))} (${p50(queriesBetween(withSpare.ids, 'submit', 'run.sent'))} before run)`, 'p50 count', ''],
      ['throughput c=2, spare', `${tput.perSecond.toFixed(1)} tasks/s, ${(spareRatio * 100).toFixed(0)}% of ceiling`, '≥ 80% of the same round\'s ceiling', spareRatio >= 0.8 ? 'MET' : 'NOT MET'],
      ['throughput c=2, no spare', `${tputNoSpare.perSecond.toFixed(1)} tasks/s, ${(plainRatio * 100).toFixed(0)}% of ceiling`, '≥ 80% of the same round\'s ceiling', plainRatio >= 0.8 ? 'MET' : 'NOT MET'],
      ['fork ceiling, empty child, 2 in flight', `${forkCeiling.perSecond.toFixed(1)} forks/s`, 'reference', ''],
      ['task-child ceiling (no DB/Redis)', `${childCeiling.perSecond.toFixed(1)} children/s`, 'reference', ''],
      ['startup: empty child', ms(p50(readyOf(startup.empty!))), 'p50', ''],
      ['startup: empty child, CommonJS main', `${ms(p50(readyOf(startup.emptyCommonJs!)))} (CPU ${ms(p50(cpuOf(startup.emptyCommonJs!)))} vs ${ms(p50(cpuOf(startup.empty!)))})`, 'p50', ''],
      ...(hasExtraCa ? [['startup: empty, no NODE_EXTRA_CA_CERTS', ms(p50(readyOf(startup.emptyNoCa!))), 'p50', ''] as [string, string, string, string]] : []),
      ['startup: child-main.js', ms(p50(readyOf(startup.taskChild!))), 'p50', ''],
      ['startup: core + Metadata, Switchyard', ms(p50(readyOf(startup.switchyard!))), 'p50', ''],
      ['startup: core + Metadata, import()', ms(p50(readyOf(startup.salesforce!))), 'p50', ''],
      ["startup: import('jsforce')", ms(p50(readyOf(startup.jsforce!))), 'p50', ''],
      ['child CPU: empty / Switchyard / no bundle / import() / all', [startup.empty!, startup.switchyard!, startup.switchyardPackages!, startup.salesforce!, startup.jsforce!].map((r) => ms(p50(cpuOf(r)))).join(' / '), 'p50', ''],
      ['task child over empty child', `${signed(taskChildCost)}`, 'p50 start-up, reported', ''],
      ['jsforce cost, module bundle', `${signed(jsforceCost.ready)} start-up, ${signed(jsforceCost.cpu)} CPU`, 'reported', ''],
      [
        'jsforce cost, child snapshot',
        snapshotCost ? `${signed(snapshotCost.ready)} start-up, ${signed(pairedSnapshotCpu)} CPU (${(snapshotShare * 100).toFixed(0)}%)` : 'no snapshot',
        "CPU ≤ 10% of an empty child's (paired)",
        littleMore ? 'MET' : 'NOT MET',
      ],
      ['node-vault cost per child (Vault)', `${signed(vaultCost.ready)} start-up, ${signed(vaultCost.cpu)} CPU`, 'reported', ''],
    );
  } finally {
    await plainStack?.close();
    await stack.close();
  }

  heading('Summary (latencies: p50 / p95)');
  const row = tableHeader([40, 26, 30, 8], ['figure', 'measured', 'goal', 'verdict']);
  for (const cells of summary) row(cells);
  console.log('');
  printEnd(line, began);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
