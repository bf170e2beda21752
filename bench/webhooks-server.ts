// The API process of the webhook benchmark (bench/webhooks.ts forks it), assembled like `switchyard serve`
// (src/cli/server-command.ts): loadEnv, createRuntime, one TaskEventFeed, createApp with the same options `serve`
// passes (webhook body limit, rate limits, trusted proxies, GraphQL and subscription limits), a pino logger at
// LOG_LEVEL writing to stderr (the benchmark sets warn). No worker: tasks just queue.
// It runs alone in its process so the load generator does not share its event loop or its CPU accounting;
// it does not migrate (the benchmark has done that).
//
// Environment: BENCH_SWITCHYARD_ENV, a JSON object of Switchyard variables (DATABASE_URL with ?schema=…,
// REDIS_URL, SWITCHYARD_QUEUE_PREFIX, SWITCHYARD_SECRET_KEY, …) read through loadEnv like the real process.
//
// Instrumentation (this process only, src/ unchanged): pg.Client.prototype.query is wrapped to count the SQL
// statements this process sends (by first keyword), and ioredis's Redis.prototype.sendCommand and
// Pipeline.prototype.exec to count Redis commands and round trips (a pipeline is one), so the benchmark can report
// statements and round trips per delivery. The wrappers only increment counters.
//
// IPC protocol (JSON), requests from the benchmark → replies:
//   { t: 'stats' }              → { t: 'stats', cpuMs, elu, rss, heapUsed, sql: {KEYWORD: n}, redis: {COMMAND: n}, redisRoundTrips }
//   { t: 'profile-start' }      → { t: 'profile-started' }           (V8 CPU profiler through node:inspector)
//   { t: 'profile-stop', top }  → { t: 'profile', totalMs, samples, functions, packages, inclusive, file }
//   { t: 'ops', sourceId, org, payload, seconds, concurrency }
//                               → { t: 'ops', results: [{ name, ops, cpuMsPerOp, sqlPerOp }] }: each step of the delivery
//                                 path called on its own, `concurrency` at a time for `seconds`, and the API CPU per call
//                                 (see measureOps; it writes rows, so the benchmark asks for it after its totals check)
//   { t: 'stop' }               → closes the app and exits 0
// On start it creates an OWNER API token (TokenService, as `switchyard token create` does) and sends
// { t: 'ready', url, token, pid }. Assembly, profile-start/-stop and stop are shared with fanout-server.ts
// (bench/lib/api-server.ts); the benchmark's side is bench/lib/api-process.ts.
import { appOptionsFromEnv } from '../src/cli/server-command.js';
import { createHmac, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Pipeline, Redis } from 'ioredis';
import pg from 'pg';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { newTask } from '../src/domain/tasks/task-service.js';
import { createApp } from '../src/server/create-app.js';
import type { Services } from '../src/services.js';
import { normalise } from '../src/webhooks/events.js';
import { send, serveRequests, startApiServer } from './lib/api-server.js';
import { selfTimeByPackage, selfTimes, type Profile } from './lib/profile.js';

type Request =
  | { t: 'stats' }
  | { t: 'ops'; sourceId: string; org: string; payload: Record<string, unknown>; seconds: number; concurrency: number };

// ------------------------------------------------------------------------------------------ counters

const sqlCounts: Record<string, number> = {};
const redisCounts: Record<string, number> = {};
let redisRoundTrips = 0;

function countSql(text: unknown): void {
  const sql = typeof text === 'string' ? text : typeof (text as { text?: unknown })?.text === 'string' ? (text as { text: string }).text : '';
  const keyword = (/^\s*([A-Za-z]+)/.exec(sql)?.[1] ?? '?').toUpperCase();
  sqlCounts[keyword] = (sqlCounts[keyword] ?? 0) + 1;
}

const originalQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;
(pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: unknown, ...args: unknown[]) {
  countSql(args[0]);
  return originalQuery.apply(this, args);
};

const redisProto = Redis.prototype as unknown as { sendCommand: (command: { name?: string }, ...rest: unknown[]) => unknown };
const originalSendCommand = redisProto.sendCommand;
redisProto.sendCommand = function (this: unknown, command, ...rest) {
  const name = String(command?.name ?? '?').toUpperCase();
  redisCounts[name] = (redisCounts[name] ?? 0) + 1;
  // Pipeline.exec (also BullMQ's addBulk, a MULTI) sends its commands through here too, passing the stream: they
  // travel in the pipeline's one write, which Pipeline.exec below counts as the round trip.
  if (rest[0] === undefined) redisRoundTrips += 1;
  return originalSendCommand.call(this, command, ...rest);
};
const pipelineProto = Pipeline.prototype as unknown as { exec: (...args: unknown[]) => unknown };
const originalExec = pipelineProto.exec;
pipelineProto.exec = function (this: { length?: number }, ...args: unknown[]) {
  redisCounts['(pipeline)'] = (redisCounts['(pipeline)'] ?? 0) + 1;
  redisRoundTrips += 1;
  return originalExec.apply(this, args);
};

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const { env, runtime, address, stop } = await startApiServer('webhooks-server', process.stderr, ({ env, logger, runtime, feed }) =>
    createApp(appOptionsFromEnv(env, runtime, logger, feed)),
  );
  const { secret: token } = await runtime.services.tokens.create(cliPrincipal, { name: 'bench-webhooks', role: 'OWNER', userName: 'bench' });

  let elu = performance.eventLoopUtilization();

  const profiling = {
    intervalUs: 250,
    filePrefix: 'switchyard-webhooks',
    summarise: summariseProfile,
    notStarted: { totalMs: 0, samples: 0, functions: [], packages: [] },
  };
  serveRequests<Request>('webhooks-server', stop, profiling, async (request) => {
    switch (request.t) {
      case 'stats': {
        const memory = process.memoryUsage();
        const cpu = process.cpuUsage();
        const now = performance.eventLoopUtilization();
        const sinceLast = performance.eventLoopUtilization(now, elu);
        elu = now;
        send({
          t: 'stats',
          cpuMs: (cpu.user + cpu.system) / 1000,
          elu: sinceLast.utilization,
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          sql: { ...sqlCounts },
          redis: { ...redisCounts },
          redisRoundTrips,
        });
        return;
      }
      case 'ops': {
        send({ t: 'ops', results: await measureOps(runtime.services, request, env.SWITCHYARD_QUEUE_PREFIX) });
        return;
      }
    }
  });
  send({ t: 'ready', url: `http://127.0.0.1:${address.port}`, token, pid: process.pid });
}

// ----------------------------------------------------------------------------------- steps, one at a time

/**
 * The steps WebhookService.accept and the route take, each called on its own with the same shapes (same models,
 * data, a payload of the same size), `concurrency` at a time for `seconds` (unless the step says otherwise), after
 * 10 unmeasured calls: API CPU per call, and SQL statements per call. Plus references that are not on the path
 * ("reference:"): a bare HMAC, and the same rows written through Prisma's compiled queries, to show what raw SQL
 * saves. Last, WebhookService.accept as a whole for both kinds of delivery, one call at a time (every delivery in a
 * statement of its own) and `concurrency` at a time (batched: the deliveries share statements). These calls write
 * rows and jobs (tasks with source API, jobs of Queue.add on a queue named `bench-ops`; accept's as the route's),
 * so the benchmark asks for them after its totals check.
 */
async function measureOps(services: Services, request: Extract<Request, { t: 'ops' }>, prefix: string) {
  const { prisma, webhooks, tasks } = services;
  const source = await prisma.webhookSource.findUniqueOrThrow({ where: { id: request.sourceId } });
  const body = Buffer.from(JSON.stringify(request.payload));
  const payload = { ...request.payload, ref: 'refs/heads/feature/ops' };
  const featureBody = Buffer.from(JSON.stringify(payload));
  const config = (await webhooks.sourceForDelivery('GITHUB', source.id))!;
  const opsQueue = new Queue('bench-ops', { connection: services.queues.get('BATCH').opts.connection as Redis, prefix });
  opsQueue.on('error', () => undefined);
  const { spec } = await tasks.validate({ type: 'DIAGNOSTIC', org: request.org });
  const origin = { source: 'API' as const, requestedBy: 'bench-ops' };
  const accept = (kind: 'main' | 'feature') => () => {
    const headers = { 'x-github-event': 'push', 'x-github-delivery': randomUUID() };
    return kind === 'main'
      ? webhooks.accept(config, normalise('GITHUB', headers, request.payload, body), body)
      : webhooks.accept(config, normalise('GITHUB', headers, payload, featureBody), featureBody);
  };
  const steps: Array<{ name: string; concurrency?: number; run: (i: number) => Promise<unknown> }> = [
    { name: 'verify: HMAC-SHA256 of the body (reference, no I/O)', run: async () => createHmac('sha256', 'x'.repeat(43)).update(body).digest('hex') },
    { name: 'sourceForDelivery: source, secret and rules (cached)', run: () => webhooks.sourceForDelivery('GITHUB', source.id) },
    { name: 'TaskService.validate, one rule (zod + org query)', run: () => tasks.validate({ type: 'DIAGNOSTIC', org: request.org, params: {}, queue: null, priority: 50 }) },
    {
      // What a lone matched delivery writes besides its own row: one INSERT statement for the task and its first
      // event, the job, the PUBLISH.
      name: 'TaskService.create: task + first event in one raw statement, job, PUBLISH',
      run: () => tasks.create(spec, origin),
    },
    {
      // Not on the path: the same two rows through Prisma's compiled queries (how task creation was written before).
      name: '  reference: task + event as Prisma $transaction([create, create])',
      run: () => {
        const id = randomUUID();
        // newTask's idempotency is the raw insert's (its scope, key and digest columns); this task has none.
        const { idempotency: _none, ...row } = newTask({ spec, origin });
        return prisma.$transaction([
          prisma.task.create({ data: { ...row, id, lastEventSeq: 1, jobId: `${id}-1` } }),
          prisma.taskEvent.create({ data: { taskId: id, seq: 1, kind: 'STATUS', payload: { status: 'QUEUED' } } }),
        ]);
      },
    },
    {
      // Not on the path: a delivery row (3 KB payload) as a compiled Prisma create and as the raw INSERT accept() sends.
      name: '  reference: a delivery row as Prisma webhookDelivery.create',
      run: () =>
        prisma.webhookDelivery.create({
          data: {
            sourceId: source.id,
            deliveryKey: randomUUID(),
            event: 'push',
            repository: 'acme/app',
            ref: 'main',
            status: 'IGNORED',
            matchedRuleIds: [],
            taskIds: [],
            payload: request.payload as never,
            payloadTruncated: false,
          },
        }),
    },
    {
      name: '  reference: the same row as $queryRaw INSERT … ON CONFLICT DO NOTHING',
      run: () =>
        prisma.$queryRaw`INSERT INTO "WebhookDelivery" (id, "sourceId", "deliveryKey", event, repository, ref, status, "matchedRuleIds", "taskIds", payload, "payloadTruncated", "receivedAt")
          VALUES (${randomUUID()}::uuid, ${source.id}::uuid, ${randomUUID()}, 'push', 'acme/app', 'main', 'IGNORED', '{}', '{}', ${body.toString('utf8')}::jsonb, false, ${new Date()}::timestamp(3))
          ON CONFLICT ("sourceId", "deliveryKey") DO NOTHING RETURNING id`,
    },
    {
      name: 'BullMQ Queue.add (TaskQueues job options)',
      run: () =>
        opsQueue.add('DIAGNOSTIC', { taskId: randomUUID() }, { jobId: randomUUID(), priority: 51, attempts: 3, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } }),
    },
    // The whole of WebhookService.accept (everything but HTTP, the rate limit, the signature and the route), as
    // the route calls it: alone, and with others in flight so that deliveries share statements.
    { name: 'WebhookService.accept, push to main (1 task), one at a time', concurrency: 1, run: accept('main') },
    { name: `WebhookService.accept, push to main (1 task), ${request.concurrency} at a time`, run: accept('main') },
    { name: 'WebhookService.accept, push to a feature branch (no rule), one at a time', concurrency: 1, run: accept('feature') },
    { name: `WebhookService.accept, push to a feature branch (no rule), ${request.concurrency} at a time`, run: accept('feature') },
  ];
  const results: Array<{ name: string; ops: number; cpuMsPerOp: number; sqlPerOp: number }> = [];
  const sqlTotal = () => Object.values(sqlCounts).reduce((a, b) => a + b, 0);
  for (const step of steps) {
    for (let i = 0; i < 10; i += 1) await step.run(i);
    let ops = 0;
    const sql0 = sqlTotal();
    const cpu0 = process.cpuUsage();
    const endAt = performance.now() + request.seconds * 1000;
    await Promise.all(
      Array.from({ length: step.concurrency ?? request.concurrency }, async () => {
        while (performance.now() < endAt) await step.run(ops++);
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    results.push({ name: step.name, ops, cpuMsPerOp: (cpu.user + cpu.system) / 1000 / ops, sqlPerOp: (sqlTotal() - sql0) / ops });
  }
  await opsQueue.obliterate({ force: true }).catch(() => undefined);
  await opsQueue.close();
  return results;
}

// ------------------------------------------------------------------------------------------ profile summary

/** Self time per function (samples × interval), heaviest first, and per package / area. */
function summariseProfile(profile: Profile, top: number) {
  const { byNode, selfUs, samples, functions } = selfTimes(profile);
  const packages = selfTimeByPackage(functions);
  // Inclusive ("total") time of Switchyard's own functions: the sample's node and its callers, each function
  // counted once per sample. An async function's segments after each await show up under its own frame again
  // (resumed from the microtask queue), so this covers the function's synchronous work, not its waiting.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusiveUs = new Map<string, { name: string; url: string; line: number; us: number }>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byNode.get(at)?.callFrame;
      if (!frame || !frame.url.includes('/src/') || frame.url.includes('node_modules')) continue;
      const url = frame.url.replace(/^file:\/\//, '').replace(/^.*\/dist-bench\//, '');
      const key = `${frame.functionName}|${url}|${frame.lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = inclusiveUs.get(key) ?? { name: frame.functionName || '(anonymous)', url, line: frame.lineNumber + 1, us: 0 };
      entry.us += us;
      inclusiveUs.set(key, entry);
    }
  }
  const inclusive = [...inclusiveUs.values()]
    .map(({ us, ...rest }) => ({ ...rest, totalMs: us / 1000 }))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, top);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, samples: samples.length, functions: functions.slice(0, top), packages, inclusive };
}

main().catch((error) => {
  console.error('webhooks-server failed:', error);
  process.exit(1);
});
