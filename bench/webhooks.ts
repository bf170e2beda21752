// Webhook ingestion benchmark: signed GitHub push deliveries POSTed to /webhooks/github/<sourceId> as fast as a
// bounded number of keep-alive connections allows, end to end through the real route (raw-body HMAC check,
// de-duplication by X-GitHub-Delivery, WebhookDelivery row, rule matching, task + STATUS event + BullMQ job).
// The API runs in its own process (bench/webhooks-server.ts, forked), so this load generator shares neither its
// event loop nor its CPU accounting. No worker: the tasks just queue.
//
// Two measured rounds, each BENCH_WEBHOOKS_SECONDS long after a short warm-up:
//   matched   push to refs/heads/main: one rule fires → 200 PROCESSED with one task created and enqueued
//   ignored   push to refs/heads/feature/…: no rule matches → 200 IGNORED (verify + dedupe + persist only)
// Every answer is checked (200, status, duplicate: false, number of task ids); afterwards a sample of deliveries
// is looked up in Postgres and BullMQ, and the totals must agree: deliveries == tasks == jobs == sent.
// Loopback only; a throw-away Postgres schema (bench_webhooks_*) and Redis prefix (sybench-webhooks-*) are
// removed at the end.
//
//   npx tsc -p bench/tsconfig.json && node dist-bench/bench/webhooks.js
//
// Tunables (environment): BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_WEBHOOKS_SECONDS (10, per round),
// BENCH_WEBHOOKS_CONCURRENCY (32 requests in flight, one keep-alive connection each), BENCH_WEBHOOKS_WARMUP_DELIVERIES (500)
// and BENCH_WEBHOOKS_WARMUP_SECONDS (8, the warm-up's limit),
// BENCH_WEBHOOKS_ROUNDS (matched,ignored), BENCH_WEBHOOKS_PROFILE=1 (after the measured rounds, one more 5 s round of
// each kind with the V8 CPU profiler on in the API process; its figures are not the reference),
// BENCH_WEBHOOKS_OPS=0 (skip the step-by-step part: each step of the delivery path called alone in the API process,
// API CPU per call), BENCH_DEADLINE_SECONDS (90). See bench/README.md.
import type { ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { forkApi, ForkedApi } from './lib/api-process.js';
import { baseDatabaseUrl, intEnv, redisUrl } from './lib/env.js';
import { machineCpu, ownCpuMs, postgresPortsOf, serverProcesses, statFields, type ServerProcess } from './lib/procfs.js';
import type { ProfileSummary } from './lib/profile.js';
import { heading, labelledLine, loadAverages, ms, printEnd, verdict } from './lib/report.js';
import { createScratch, runEnvironment } from './lib/scratch.js';
import { quantileSorted } from './lib/stats.js';

// ---------------------------------------------------------------------------------------------- settings


const seconds = intEnv('BENCH_WEBHOOKS_SECONDS', 10);
const concurrency = intEnv('BENCH_WEBHOOKS_CONCURRENCY', 32);
/**
 * Warm-up before each round (JIT, Prisma's query compiler, the pool, Postgres caches): at least this many
 * deliveries, but no longer than BENCH_WEBHOOKS_WARMUP_SECONDS. In our runs CPU per delivery kept falling over the
 * first few hundred deliveries, so a short warm-up by time would leave a slow machine's round cold.
 */
const warmupDeliveries = intEnv('BENCH_WEBHOOKS_WARMUP_DELIVERIES', 500);
const warmupSeconds = intEnv('BENCH_WEBHOOKS_WARMUP_SECONDS', 8);
const rounds = (process.env.BENCH_WEBHOOKS_ROUNDS ?? 'matched,ignored').split(',').map((r) => r.trim()) as Kind[];
const profile = process.env.BENCH_WEBHOOKS_PROFILE === '1';
const profileSeconds = 5;
const opsEnabled = process.env.BENCH_WEBHOOKS_OPS !== '0';
const opsSeconds = 1;
const deadlineSeconds = intEnv('BENCH_DEADLINE_SECONDS', 90);
const goalPerSecond = 1000;
/** Per minute per sender address; see the API's environment in main(). */
const webhookRateLimit = 10_000_000;
/** One answer in this many is kept for the Postgres/BullMQ spot check. */
const sampleEvery = 97;

type Kind = 'matched' | 'ignored';

const migrationsDir = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));
const serverFile = fileURLToPath(new URL('./webhooks-server.js', import.meta.url));

// ----------------------------------------------------------------------------------------------- helpers

const fmt = (value: number, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

const line = labelledLine(62);

// --------------------------------------------------------------------------------- CPU accounting (/proc)

interface RawCpu {
  self: number;
  /** CPU ms by pid of every Postgres backend (with its client's port) and redis-server; cpuDelta keeps the API's backends. */
  byPid: Map<number, ServerProcess>;
  machineBusy: number;
  machineTotal: number;
}

function cpuSnapshot(): RawCpu {
  const byPid = serverProcesses();
  const machine = machineCpu();
  return { self: ownCpuMs(statFields('/proc/self/stat')), byPid, machineBusy: machine.busy, machineTotal: machine.total };
}

interface CpuDelta {
  client: number;
  postgres: number;
  redis: number;
  machineBusy: number;
  machineTotal: number;
}

/** CPU ms spent between two snapshots; Postgres only for backends whose client port belongs to the API process. */
function cpuDelta(a: RawCpu, b: RawCpu, apiPorts: Set<number>): CpuDelta {
  let postgres = 0;
  let redis = 0;
  for (const [pid, after] of b.byPid) {
    const was = a.byPid.get(pid);
    const before = was && was.comm === after.comm ? was.ms : 0;
    if (after.comm === 'postgres') {
      if (after.port !== null && apiPorts.has(after.port)) postgres += after.ms - before;
    } else if (was) redis += after.ms - before;
  }
  return { client: b.self - a.self, postgres, redis, machineBusy: b.machineBusy - a.machineBusy, machineTotal: b.machineTotal - a.machineTotal };
}

// ------------------------------------------------------------------------------- the API process (forked)

interface ServerStats {
  cpuMs: number;
  elu: number;
  rss: number;
  heapUsed: number;
  sql: Record<string, number>;
  redis: Record<string, number>;
  redisRoundTrips: number;
}

/** The profile summary webhooks-server.ts replies with: also the total (inclusive) time of Switchyard's functions. */
interface InclusiveProfileSummary extends ProfileSummary {
  inclusive: Array<{ name: string; url: string; line: number; totalMs: number }>;
}

interface OpResult {
  name: string;
  ops: number;
  cpuMsPerOp: number;
  sqlPerOp: number;
}

class ApiProcess extends ForkedApi<InclusiveProfileSummary> {
  private constructor(
    child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly pid: number,
  ) {
    super(child, 30_000);
  }

  static async start(env: Record<string, string>): Promise<ApiProcess> {
    const { child, ready } = await forkApi<{ url: string; token: string; pid: number }>(serverFile, 'webhooks-server', {
      execArgv: [],
      env: { ...process.env, NODE_ENV: 'production', ...env },
    });
    return new ApiProcess(child, ready.url, ready.token, ready.pid);
  }

  stats(): Promise<ServerStats> {
    return this.request({ t: 'stats' }, 'stats');
  }

  ops(request: { sourceId: string; org: string; payload: Record<string, unknown>; seconds: number; concurrency: number }): Promise<OpResult[]> {
    return this.request<{ results: OpResult[] }>({ t: 'ops', ...request }, 'ops', 60_000).then((answer) => answer.results);
  }
}

async function gql<T = any>(api: ApiProcess, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: `Bearer ${api.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL failed: ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

// ------------------------------------------------------------------------------------------ the payloads

/**
 * A GitHub push payload of realistic shape and size (the fields GitHub documents for `push`, one commit),
 * with the commit id as a placeholder. Each delivery gets its own commit id and X-GitHub-Delivery.
 */
function pushTemplate(ref: string): string {
  const repo = {
    id: 123456789,
    node_id: 'R_kgDOBench01',
    name: 'app',
    full_name: 'acme/app',
    private: true,
    owner: { name: 'acme', email: null, login: 'acme', id: 9919, node_id: 'O_kgDOBench', avatar_url: 'https://avatars.githubusercontent.com/u/9919?v=4', url: 'https://api.github.com/users/acme', html_url: 'https://github.com/acme', type: 'Organization', site_admin: false },
    html_url: 'https://github.com/acme/app',
    description: 'Salesforce metadata for the acme org',
    fork: false,
    url: 'https://github.com/acme/app',
    created_at: 1700000000,
    updated_at: '2025-01-01T00:00:00Z',
    pushed_at: 1735689600,
    git_url: 'git://github.com/acme/app.git',
    ssh_url: 'git@github.com:acme/app.git',
    clone_url: 'https://github.com/acme/app.git',
    size: 4096,
    stargazers_count: 3,
    watchers_count: 3,
    language: 'Apex',
    has_issues: true,
    forks_count: 0,
    open_issues_count: 2,
    default_branch: 'main',
    master_branch: 'main',
    organization: 'acme',
    visibility: 'private',
  };
  const author = { name: 'Dev Eloper', email: 'dev@acme.example', username: 'dev-acme' };
  const commit = {
    id: '@@SHA@@',
    tree_id: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
    distinct: true,
    message: 'Update Account trigger handler and its test class',
    timestamp: '2025-01-01T12:00:00+00:00',
    url: 'https://github.com/acme/app/commit/@@SHA@@',
    author,
    committer: author,
    added: ['force-app/main/default/classes/AccountTriggerHandlerTest.cls'],
    removed: [],
    modified: ['force-app/main/default/classes/AccountTriggerHandler.cls', 'force-app/main/default/triggers/AccountTrigger.trigger'],
  };
  const payload = {
    ref,
    before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
    after: '@@SHA@@',
    repository: repo,
    pusher: { name: 'dev-acme', email: 'dev@acme.example' },
    organization: { login: 'acme', id: 9919, node_id: 'O_kgDOBench', url: 'https://api.github.com/orgs/acme', description: 'Acme' },
    sender: { login: 'dev-acme', id: 4242, node_id: 'U_kgDOBench', avatar_url: 'https://avatars.githubusercontent.com/u/4242?v=4', type: 'User', site_admin: false },
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: 'https://github.com/acme/app/compare/6113728f27ae...@@SHA12@@',
    commits: [commit],
    head_commit: commit,
  };
  const json = JSON.stringify(payload).replaceAll('@@SHA12@@', '@@SHA@@');
  // One marker character (JSON.stringify never emits a raw U+0000) where each delivery's commit id goes.
  return json.replaceAll('@@SHA@@', '\u0000');
}

/** Body for one delivery: the template with a fresh 40-hex commit id in every placeholder. */
function fillTemplate(template: string, sha: string): string {
  return template.split('\u0000').join(sha);
}

// ------------------------------------------------------------------------------------------- the client

interface Answer {
  status: number;
  body: string;
  latencyMs: number;
}

function post(agent: http.Agent, url: URL, body: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), latencyMs: performance.now() - started }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Target {
  url: URL;
  secret: string;
}

interface RoundResult {
  kind: Kind;
  label: string;
  sent: number;
  verified: number;
  failures: Record<string, number>;
  firstFailure: string | null;
  elapsedS: number;
  latencies: Float64Array;
  samples: Array<{ deliveryId: string; taskId: string | null; key: string }>;
  bodyBytes: number;
  server: { cpuMs: number; elu: number; sql: Record<string, number>; redis: Record<string, number>; redisRoundTrips: number };
  cpu: CpuDelta;
  profile: InclusiveProfileSummary | null;
}

const sha40 = () => randomBytes(20).toString('hex');

/**
 * Sends deliveries of one kind for `durationS` with `concurrency` in flight, checking every answer. With
 * `untilCount`, stops as soon as that many have been sent instead (but still after `durationS` at most).
 */
async function runRound(api: ApiProcess, target: Target, kind: Kind, label: string, durationS: number, withProfile: boolean, untilCount?: number): Promise<RoundResult> {
  const template = pushTemplate(kind === 'matched' ? 'refs/heads/main' : `refs/heads/feature/bench-${randomBytes(3).toString('hex')}`);
  const expectedStatus = kind === 'matched' ? 'PROCESSED' : 'IGNORED';
  const expectedTasks = kind === 'matched' ? 1 : 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let firstFailure: string | null = null;
  const samples: RoundResult['samples'] = [];
  let sent = 0;
  let verified = 0;
  let bodyBytes = 0;
  const fail = (reason: string, detail: string) => {
    failures[reason] = (failures[reason] ?? 0) + 1;
    firstFailure ??= `${reason}: ${detail.slice(0, 300)}`;
  };

  if (withProfile) await api.profileStart();
  const serverBefore = await api.stats();
  const cpuBefore = cpuSnapshot();
  const started = performance.now();
  const endAt = started + durationS * 1000;
  let lastDone = started;
  const lane = async () => {
    while (performance.now() < endAt && (untilCount === undefined || sent < untilCount)) {
      const key = randomUUID();
      const body = fillTemplate(template, sha40());
      bodyBytes = body.length;
      const signature = `sha256=${createHmac('sha256', target.secret).update(body).digest('hex')}`;
      sent += 1;
      let answer: Answer;
      try {
        answer = await post(agent, target.url, body, {
          'content-type': 'application/json',
          'user-agent': 'GitHub-Hookshot/bench',
          'x-github-event': 'push',
          'x-github-delivery': key,
          'x-github-hook-id': '42',
          'x-hub-signature-256': signature,
        });
      } catch (error) {
        fail('transport error', (error as Error).message);
        continue;
      }
      lastDone = performance.now();
      if (answer.status !== 200) {
        fail(`HTTP ${answer.status}`, answer.body);
        continue;
      }
      let outcome: { deliveryId?: string; duplicate?: boolean; status?: string; taskIds?: string[]; error?: string };
      try {
        outcome = JSON.parse(answer.body);
      } catch {
        fail('unparseable answer', answer.body);
        continue;
      }
      if (outcome.status !== expectedStatus || outcome.duplicate !== false || outcome.taskIds?.length !== expectedTasks || !outcome.deliveryId) {
        fail(`answer ${outcome.status}/${outcome.duplicate ? 'duplicate' : 'new'}/${outcome.taskIds?.length ?? '?'} tasks`, answer.body);
        continue;
      }
      verified += 1;
      latencies.push(answer.latencyMs);
      if (verified % sampleEvery === 1) samples.push({ deliveryId: outcome.deliveryId, taskId: outcome.taskIds?.[0] ?? null, key });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsedS = (lastDone - started) / 1000;
  const cpuAfter = cpuSnapshot();
  const serverAfter = await api.stats();
  const profileSummary = withProfile ? await api.profileStop(20) : null;
  agent.destroy();

  const diff = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]).filter(([, v]) => (v as number) > 0));
  return {
    kind,
    label,
    sent,
    verified,
    failures,
    firstFailure,
    elapsedS,
    latencies: Float64Array.from(latencies).sort(),
    samples,
    bodyBytes,
    server: {
      cpuMs: serverAfter.cpuMs - serverBefore.cpuMs,
      elu: serverAfter.elu,
      sql: diff(serverBefore.sql, serverAfter.sql),
      redis: diff(serverBefore.redis, serverAfter.redis),
      redisRoundTrips: serverAfter.redisRoundTrips - serverBefore.redisRoundTrips,
    },
    cpu: cpuDelta(cpuBefore, cpuAfter, postgresPortsOf(api.pid)),
    profile: profileSummary,
  };
}

function printRound(r: RoundResult): void {
  const rate = r.verified / r.elapsedS;
  const lat = r.latencies;
  const failed = Object.values(r.failures).reduce((a, b) => a + b, 0);
  heading(`${r.label}: ${r.kind === 'matched' ? 'push to main, one rule fires (200 PROCESSED, 1 task)' : 'push to a feature branch, no rule matches (200 IGNORED)'}`);
  line('verified deliveries per second (end to end)', `${fmt(rate)} /s   goal ≥ ${fmt(goalPerSecond)}/s on 2 cores → ${verdict(rate >= goalPerSecond)}`);
  line('latency p50 / p90 / p99 / max', `${ms(quantileSorted(lat, 0.5))} / ${ms(quantileSorted(lat, 0.9))} / ${ms(quantileSorted(lat, 0.99))} / ${ms(lat[lat.length - 1] ?? NaN)}`);
  line('deliveries sent / verified / failed', `${r.sent} / ${r.verified} / ${failed} in ${r.elapsedS.toFixed(2)} s, ${concurrency} in flight, body ${fmt(r.bodyBytes)} bytes`);
  if (failed) {
    line('  failures', Object.entries(r.failures).map(([k, v]) => `${v}× ${k}`).join(', '));
    line('  first failure', r.firstFailure ?? '');
  }
  const per = (value: number) => (r.verified ? value / r.verified : NaN);
  const sqlTotal = Object.values(r.server.sql).reduce((a, b) => a + b, 0);
  line(
    'SQL statements per delivery (API process)',
    `${per(sqlTotal).toFixed(2)}  (${Object.entries(r.server.sql).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${per(v).toFixed(2)}`).join(', ')})`,
  );
  line(
    'Redis round trips per delivery (API process)',
    `${per(r.server.redisRoundTrips).toFixed(2)}  (commands: ${Object.entries(r.server.redis).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${per(v).toFixed(2)}`).join(', ') || 'none'})`,
  );
  const wall = r.elapsedS * 1000;
  const cores = (value: number) => `${((value / wall) * 100).toFixed(0)}% of a core`;
  line('CPU per delivery: API process / its Postgres backends', `${ms(per(r.server.cpuMs), 3)} / ${ms(per(r.cpu.postgres), 3)}`);
  line('CPU per delivery: redis-server / load generator', `${ms(per(r.cpu.redis), 3)} / ${ms(per(r.cpu.client), 3)}`);
  line('API process: CPU / event loop busy', `${cores(r.server.cpuMs)} / ${(r.server.elu * 100).toFixed(0)}%`);
  line('Postgres backends of the API / redis-server / load generator', `${cores(r.cpu.postgres)} / ${cores(r.cpu.redis)} / ${cores(r.cpu.client)}`);
  const ours = r.server.cpuMs + r.cpu.postgres + r.cpu.redis + r.cpu.client;
  const total = r.cpu.machineTotal;
  line(
    'machine: busy / of which not this benchmark',
    `${((r.cpu.machineBusy / Math.max(1, total)) * 100).toFixed(0)}% of ${cpus().length} cores / ${(((r.cpu.machineBusy - ours) / Math.max(1, total)) * 100).toFixed(0)}% (other processes, kernel)`,
  );
  const serverSide = per(r.server.cpuMs + r.cpu.postgres + r.cpu.redis);
  line(
    'CPU-bound ceiling, API + Postgres + Redis on 2 idle cores',
    `≈ ${fmt((cpus().length * 1000) / serverSide)} /s (${ms(serverSide, 3)} CPU per delivery, load generator elsewhere); API event loop alone: ≈ ${fmt(1000 / per(r.server.cpuMs))} /s`,
  );
  if (r.profile) printProfile(r.profile);
}

function printProfile(p: InclusiveProfileSummary): void {
  console.log(`  -- API CPU profile: ${p.samples} samples over ${ms(p.totalMs, 0)} (${p.file})`);
  const busy = p.packages.filter((g) => g.name !== '(idle)').reduce((sum, g) => sum + g.selfMs, 0);
  console.log(`     self time by package (% of non-idle samples): ${p.packages.filter((g) => g.name !== '(idle)').slice(0, 12).map((g) => `${g.name} ${((g.selfMs / busy) * 100).toFixed(0)}%`).join(', ')}`);
  console.log('     top functions by self time:');
  for (const f of p.functions.slice(0, 15)) console.log(`     ${ms(f.selfMs, 0).padStart(9)}  ${f.name}  ${f.url ? `${f.url}:${f.line}` : ''}`);
  console.log('     Switchyard functions by total time (synchronous work under them, awaits not included):');
  for (const f of p.inclusive.slice(0, 15)) console.log(`     ${ms(f.totalMs, 0).padStart(9)}  ${f.name}  ${f.url}:${f.line}`);
}

// ----------------------------------------------------------------------------------------------- checks

interface Totals {
  byStatus: Record<string, number>;
  tasks: number;
  queuedWithJob: number;
  statusEvents: number;
  jobs: number;
}

async function totals(db: pg.Client, schema: string, jobsQueue: Queue): Promise<Totals> {
  const s = `"${schema}"`;
  const byStatus = Object.fromEntries(
    (await db.query<{ status: string; n: string }>(`SELECT status::text AS status, count(*) AS n FROM ${s}."WebhookDelivery" GROUP BY status`)).rows.map((r) => [r.status, Number(r.n)]),
  );
  const task = (
    await db.query<{ tasks: string; queued: string; events: string }>(
      `SELECT count(*) AS tasks,
              count(*) FILTER (WHERE t.status = 'QUEUED' AND t."jobId" IS NOT NULL) AS queued,
              (SELECT count(*) FROM ${s}."TaskEvent" e JOIN ${s}."Task" t2 ON t2.id = e."taskId" WHERE t2.source = 'WEBHOOK' AND e.kind = 'STATUS') AS events
         FROM ${s}."Task" t WHERE t.source = 'WEBHOOK'`,
    )
  ).rows[0]!;
  const counts = await jobsQueue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  const jobs = Object.values(counts).reduce((a, b) => a + b, 0);
  return { byStatus, tasks: Number(task.tasks), queuedWithJob: Number(task.queued), statusEvents: Number(task.events), jobs };
}

/** Looks a sample of answered deliveries up in Postgres and BullMQ. Returns problems found. */
async function spotCheck(db: pg.Client, schema: string, jobsQueue: Queue, sourceId: string, samples: RoundResult['samples'], kind: Kind): Promise<string[]> {
  const problems: string[] = [];
  const s = `"${schema}"`;
  for (const sample of samples) {
    const delivery = (
      await db.query<{ status: string; taskIds: string[]; deliveryKey: string; sourceId: string; event: string; ref: string | null; repository: string | null; stored: boolean }>(
        `SELECT status::text AS status, "taskIds", "deliveryKey", "sourceId"::text AS "sourceId", event, ref, repository, payload IS NOT NULL AS stored FROM ${s}."WebhookDelivery" WHERE id = $1`,
        [sample.deliveryId],
      )
    ).rows[0];
    if (!delivery) {
      problems.push(`delivery ${sample.deliveryId} not in Postgres`);
      continue;
    }
    const wantStatus = kind === 'matched' ? 'PROCESSED' : 'IGNORED';
    if (delivery.status !== wantStatus || delivery.deliveryKey !== sample.key || delivery.sourceId !== sourceId || delivery.event !== 'push' || delivery.repository !== 'acme/app' || !delivery.stored) {
      problems.push(`delivery ${sample.deliveryId}: ${JSON.stringify(delivery).slice(0, 200)}`);
    }
    if (kind === 'ignored') {
      if (delivery.taskIds.length !== 0) problems.push(`ignored delivery ${sample.deliveryId} has tasks`);
      continue;
    }
    if (delivery.taskIds.length !== 1 || delivery.taskIds[0] !== sample.taskId) {
      problems.push(`delivery ${sample.deliveryId}: taskIds ${JSON.stringify(delivery.taskIds)} ≠ answered ${sample.taskId}`);
      continue;
    }
    const task = (
      await db.query<{ type: string; status: string; source: string; orgAlias: string; jobId: string | null; requestedBy: string }>(
        `SELECT type::text AS type, status::text AS status, source::text AS source, "orgAlias", "jobId", "requestedBy" FROM ${s}."Task" WHERE id = $1`,
        [sample.taskId],
      )
    ).rows[0];
    if (!task || task.type !== 'DIAGNOSTIC' || task.status !== 'QUEUED' || task.source !== 'WEBHOOK' || task.orgAlias !== 'bench' || !task.jobId) {
      problems.push(`task ${sample.taskId}: ${JSON.stringify(task ?? null)}`);
      continue;
    }
    const job = await jobsQueue.getJob(task.jobId);
    if (!job || (job.data as { taskId?: string }).taskId !== sample.taskId) problems.push(`task ${sample.taskId}: no BullMQ job ${task.jobId}`);
  }
  return problems;
}

// ----------------------------------------------------------------------------------------------- the bench

async function main(): Promise<void> {
  const began = performance.now();
  const scratch = createScratch('webhooks', 1000);
  const { schema, prefix } = scratch;
  let api: ApiProcess | null = null;
  let cleaning = false;
  const cleanup = async () => {
    if (cleaning) return;
    cleaning = true;
    await api?.stop().catch(() => undefined);
    await scratch.remove();
  };
  const deadline = setTimeout(() => {
    console.error(`\nBenchmark exceeded BENCH_DEADLINE_SECONDS=${deadlineSeconds}; aborting.`);
    api?.child.kill('SIGKILL');
    void cleanup().finally(() => process.exit(2));
  }, deadlineSeconds * 1000);
  deadline.unref();
  process.once('SIGINT', () => {
    api?.child.kill('SIGKILL');
    void cleanup().finally(() => process.exit(130));
  });

  console.log(
    `Webhook ingestion benchmark: signed GitHub push deliveries, ${concurrency} in flight over keep-alive connections, ` +
      `${seconds} s per round (rounds: ${rounds.join(', ')}; each after a warm-up of ${warmupDeliveries} deliveries or ${warmupSeconds} s, whichever comes first)`,
  );
  const load = loadavg()[0]!;
  console.log(`  machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadAverages()}`);
  if (load > cpus().length) {
    console.log(`  WARNING: load average ${load.toFixed(1)} on ${cpus().length} cores before starting: other work competes for the CPU; the rates measure the share this benchmark got (see "CPU per delivery" and the CPU-bound ceiling)`);
  }

  await migrate(scratch.databaseUrl, migrationsDir);
  // The API's configuration, read through loadEnv in the API process from this explicit object (nothing from
  // this shell's environment, e.g. no VAULT_ADDR): production defaults (Prisma pool 10, 1 MB webhook bodies,
  // 64 KB stored payloads), no org check on registration (no worker runs), a webhook rate limit that does not
  // bite, warnings on stderr.
  const switchyardEnv = runEnvironment(scratch, {
    SWITCHYARD_CHECK_ORGS: 'false',
    // The webhook rate limit stays on, so its Redis sliding window (one EVAL per request) is part of what is
    // measured, but far above this benchmark's rate: the default (1,200 per minute per sender address) would
    // turn all but 20 deliveries a second from this one loopback address into 429s.
    SWITCHYARD_RATE_LIMIT_WEBHOOKS: String(webhookRateLimit),
    LOG_LEVEL: 'warn',
  });
  api = await ApiProcess.start({ BENCH_SWITCHYARD_ENV: JSON.stringify(switchyardEnv) });
  const db = new pg.Client({ connectionString: baseDatabaseUrl });
  await db.connect();
  const queueRedis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const jobsQueue = new Queue('normal', { connection: queueRedis, prefix });
  jobsQueue.on('error', () => undefined);
  const results: RoundResult[] = [];
  let problems: string[] = [];
  let final: Totals | null = null;
  const expected = { processed: 0, ignored: 0 };
  try {
    // --- setup through GraphQL, as an operator would (cf. test/webhooks-smoke.test.ts)
    const org = await gql(api, `mutation { registerOrg(input: { alias: "bench", kind: DEVELOPER, credentials: { instanceUrl: "https://bench.my.salesforce.com", refreshToken: "5Aep861benchhooks" } }) { __typename ... on Error { code message } } }`);
    if (org.registerOrg.__typename !== 'RegisterOrgSuccess') throw new Error(`registerOrg: ${JSON.stringify(org.registerOrg)}`);
    const created = await gql(api, `mutation { createWebhookSource(kind: GITHUB, name: "bench-repo") { __typename ... on CreateWebhookSourceSuccess { created { secret source { id path } } } ... on Error { code message } } }`);
    if (created.createWebhookSource.__typename !== 'CreateWebhookSourceSuccess') throw new Error(`createWebhookSource: ${JSON.stringify(created.createWebhookSource)}`);
    const { secret, source } = created.createWebhookSource.created as { secret: string; source: { id: string; path: string } };
    const rule = await gql(
      api,
      `mutation($s: ID!) { createWebhookRule(input: { sourceId: $s, name: "main", event: "push", ref: "main", taskType: DIAGNOSTIC, org: "bench" }) { __typename ... on Error { code message } } }`,
      { s: source.id },
    );
    if (rule.createWebhookRule.__typename !== 'CreateWebhookRuleSuccess') throw new Error(`createWebhookRule: ${JSON.stringify(rule.createWebhookRule)}`);
    const target: Target = { url: new URL(`${api.url}${source.path}`), secret };
    const rawSourceId = source.path.split('/').pop()!;
    console.log(`  API process ${api.pid} at ${api.url}; source ${source.path} (secret ${secret.slice(0, 6)}…); rule: push to main → DIAGNOSTIC on org "bench" (queue NORMAL, no worker)`);

    // --- sanity: a wrong signature is refused and a repeated delivery id is answered as a duplicate
    {
      const agent = new http.Agent({ keepAlive: false });
      const template = pushTemplate('refs/heads/main');
      const body = fillTemplate(template, sha40());
      const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID() };
      const forged = await post(agent, target.url, body, { ...headers, 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` });
      const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      const first = await post(agent, target.url, body, { ...headers, 'x-hub-signature-256': signature });
      const again = await post(agent, target.url, body, { ...headers, 'x-hub-signature-256': signature });
      const a = JSON.parse(first.body) as { status: string; taskIds: string[]; deliveryId: string };
      const b = JSON.parse(again.body) as { duplicate: boolean; taskIds: string[]; deliveryId: string };
      const ok = forged.status === 401 && first.status === 200 && a.status === 'PROCESSED' && a.taskIds.length === 1 && b.duplicate === true && b.deliveryId === a.deliveryId && b.taskIds[0] === a.taskIds[0];
      line('sanity: forged → 401, signed → PROCESSED, repeated → duplicate', ok ? 'OK' : `NOT OK (${forged.status}, ${first.body}, ${again.body})`);
      if (!ok) problems.push('sanity check failed');
      expected.processed += 1;
      agent.destroy();
    }

    for (const kind of rounds) {
      if (kind !== 'matched' && kind !== 'ignored') throw new Error(`BENCH_WEBHOOKS_ROUNDS: unknown round ${kind}`);
      // Warm-up: JIT, the Prisma pool and query plans, Postgres caches. Checked and counted, not reported.
      const warm = await runRound(api, target, kind, 'warm-up', warmupSeconds, false, warmupDeliveries);
      const result = await runRound(api, target, kind, `Round "${kind}"`, seconds, false);
      for (const r of [warm, result]) {
        if (kind === 'matched') expected.processed += r.sent;
        else expected.ignored += r.sent;
        const failed = Object.values(r.failures).reduce((x, y) => x + y, 0);
        if (failed) problems.push(`${r.label} ${kind}: ${failed} answers failed the check (${r.firstFailure})`);
      }
      results.push(result);
      printRound(result);
      line('  after a warm-up of', `${warm.sent} deliveries in ${warm.elapsedS.toFixed(1)} s`);
      const spot = await spotCheck(db, schema, jobsQueue, rawSourceId, result.samples, kind);
      line(`spot check: ${result.samples.length} answered deliveries looked up in Postgres${kind === 'matched' ? ' + BullMQ' : ''}`, spot.length ? `NOT OK: ${spot.slice(0, 3).join('; ')}` : 'OK');
      problems.push(...spot);
    }

    if (profile) {
      for (const kind of rounds) {
        const r = await runRound(api, target, kind, `Profiled round "${kind}" (V8 profiler on: slower, not the reference)`, profileSeconds, true);
        if (kind === 'matched') expected.processed += r.sent;
        else expected.ignored += r.sent;
        printRound(r);
      }
    }

    // --- the totals must agree: every delivery sent was stored once, and every matched one has its task and job
    final = await totals(db, schema, jobsQueue);
    heading('Totals in Postgres and BullMQ (all rounds, warm-ups and the sanity check included)');
    const processed = final.byStatus.PROCESSED ?? 0;
    const ignored = final.byStatus.IGNORED ?? 0;
    const failedDeliveries = final.byStatus.FAILED ?? 0;
    const totalsOk =
      processed === expected.processed &&
      ignored === expected.ignored &&
      failedDeliveries === 0 &&
      final.tasks === expected.processed &&
      final.queuedWithJob === expected.processed &&
      final.statusEvents === expected.processed &&
      final.jobs === expected.processed;
    line('PROCESSED deliveries / tasks / QUEUED with job id / STATUS events / BullMQ jobs', `${processed} / ${final.tasks} / ${final.queuedWithJob} / ${final.statusEvents} / ${final.jobs}   (sent ${expected.processed})`);
    line('IGNORED deliveries / FAILED deliveries', `${ignored} / ${failedDeliveries}   (sent ${expected.ignored} / 0)`);
    line('deliveries == tasks == jobs == sent', totalsOk ? 'OK' : 'NOT OK');
    if (!totalsOk) problems.push('totals disagree');

    if (opsEnabled) {
      // After the totals: these calls write rows of their own (tasks with source API, a delivery, jobs elsewhere).
      heading(`The delivery path step by step: each step called on its own, ${concurrency} at a time unless it says otherwise, for ${opsSeconds} s: API CPU per call`);
      const payload = JSON.parse(fillTemplate(pushTemplate('refs/heads/main'), sha40())) as Record<string, unknown>;
      const ops = await api.ops({ sourceId: rawSourceId, org: 'bench', payload, seconds: opsSeconds, concurrency });
      for (const op of ops) line(op.name, `${ms(op.cpuMsPerOp, 3).padStart(9)}   ${op.sqlPerOp.toFixed(2)} SQL   (${op.ops} calls)`);
      const cost = (start: string, end: string) => ops.find((op) => op.name.startsWith(start) && op.name.endsWith(end))?.cpuMsPerOp ?? NaN;
      for (const r of results) {
        const kind = r.kind === 'matched' ? 'WebhookService.accept, push to main' : 'WebhookService.accept, push to a feature';
        const alone = cost(kind, 'one at a time');
        const together = cost(kind, `${concurrency} at a time`);
        const measured = r.server.cpuMs / r.verified;
        // Over HTTP the batches are smaller than with `concurrency` calls in flight at once, so the rest is an estimate.
        line(
          `${r.kind}: API CPU per delivery: accept() alone / ${concurrency} at a time / over HTTP`,
          `${ms(alone, 3)} / ${ms(together, 3)} / ${ms(measured, 3)}  (HTTP, rate limit, signature, route ≈ ${ms(measured - together, 3)})`,
        );
      }
    }
  } finally {
    await jobsQueue.close().catch(() => undefined);
    queueRedis.disconnect();
    await db.end().catch(() => undefined);
    await cleanup();
  }

  heading('Summary');
  for (const r of results) {
    const rate = r.verified / r.elapsedS;
    line(
      `${r.kind === 'matched' ? 'matched (PROCESSED, 1 task)' : 'ignored (IGNORED, no rule)'}: verified/s, p50 / p99`,
      `${fmt(rate).padStart(6)} /s ${rate >= goalPerSecond ? 'MET    ' : 'NOT MET'} (goal ≥ ${fmt(goalPerSecond)}/s)   ${ms(quantileSorted(r.latencies, 0.5))} / ${ms(quantileSorted(r.latencies, 0.99))}`,
    );
  }
  line('every answer checked, spot check, totals', problems.length ? `NOT OK (${problems.length}): ${problems.slice(0, 3).join('; ')}` : 'OK');
  printEnd(line, began);
  if (problems.length) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
