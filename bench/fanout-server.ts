// The API process of the fan-out benchmark (bench/fanout.ts forks it), assembled like `switchyard serve`
// (src/cli/server-command.ts): loadEnv, createRuntime, one TaskEventFeed, createApp with the configured
// (default) subscription limits and heartbeat, a pino logger at LOG_LEVEL writing nowhere. It runs alone in
// its process so its memory can be measured alone; it does not migrate (the benchmark has done that).
//
// Environment: BENCH_SWITCHYARD_ENV, a JSON object of Switchyard variables (DATABASE_URL with ?schema=…,
// REDIS_URL, SWITCHYARD_QUEUE_PREFIX, SWITCHYARD_SECRET_KEY, …) read through loadEnv like the real process.
// BENCH_FANOUT_SERVER=floor starts a bare reference fan-out instead of the API (startFloor, at the end).
// IPC protocol (JSON), requests from the benchmark → replies:
//   { t: 'stats', gc }          → { t: 'stats', rss, heapUsed, heapTotal, external, arrayBuffers, cpuMs, elu, loopDelayP99Ms,
//                                   loopDelayMaxMs, connections, sharedExecutions }   (elu and loop delay: since the last stats)
//   { t: 'profile-start' }      → { t: 'profile-started' }           (V8 CPU profiler through node:inspector)
//   { t: 'profile-stop', top }  → { t: 'profile', totalMs, samples, functions: [{ name, url, line, selfMs }], file }
//   { t: 'heap', top }          → { t: 'heap', file, classes: [{ name, count, selfBytes }] }  (heap snapshot, summarised, deleted)
//   { t: 'stop' }               → closes the app and exits 0
// On start it sends { t: 'ready', url }. Assembly, profile-start/-stop and stop are shared with webhooks-server.ts
// (bench/lib/api-server.ts); the benchmark's side is bench/lib/api-process.ts.
import { appOptionsFromEnv } from '../src/cli/server-command.js';
import { createReadStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import type { TaskEventFeed } from '../src/events/task-event-feed.js';
import { createApp } from '../src/server/create-app.js';
import type { Services } from '../src/services.js';
import type { TaskEventMessage } from '../src/events/task-event-bus.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { send, serveRequests, startApiServer } from './lib/api-server.js';
import { selfTimeByPackage, selfTimes, type Profile, type ProfileFigures } from './lib/profile.js';

type Request =
  | { t: 'stats'; gc?: boolean }
  | { t: 'heap'; top?: number };

async function main(): Promise<void> {
  const { app, address, stop } = await startApiServer('fanout-server', { write: () => undefined }, ({ env, logger, runtime, feed }) =>
    // BENCH_FANOUT_SERVER=floor: the reference fan-out instead of the API (see startFloor below).
    process.env.BENCH_FANOUT_SERVER === 'floor'
      ? startFloor(runtime.services, feed)
      : // The options `switchyard serve` passes (src/cli/server-command.ts), from the same Env.
        createApp(appOptionsFromEnv(env, runtime, logger, feed)),
  );

  let elu = performance.eventLoopUtilization();
  // How late the event loop gets round to timers and I/O (reset at every stats request): while a fan-out runs
  // in one go (microtasks only), nothing else (Redis, pongs, new sockets) is served.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();

  const profiling = {
    intervalUs: 200,
    filePrefix: 'switchyard-fanout',
    summarise: summariseProfile,
    notStarted: { totalMs: 0, samples: 0, functions: [] },
  };
  serveRequests<Request>('fanout-server', stop, profiling, async (request) => {
    switch (request.t) {
      case 'stats': {
        if (request.gc && typeof globalThis.gc === 'function') {
          // Full GCs with pauses in between: weak maps and finalisers settle, and V8's background unmapper
          // returns freed pages to the OS before RSS is read.
          for (let i = 0; i < 3; i += 1) {
            globalThis.gc();
            await new Promise((resolve) => setTimeout(resolve, 150));
          }
        }
        const memory = process.memoryUsage();
        const cpu = process.cpuUsage();
        const now = performance.eventLoopUtilization();
        const sinceLast = performance.eventLoopUtilization(now, elu);
        elu = now;
        const delay = { p99: loopDelay.count ? loopDelay.percentile(99) / 1e6 : 0, max: loopDelay.count ? loopDelay.max / 1e6 : 0 };
        loopDelay.reset();
        send({
          t: 'stats',
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          heapTotal: memory.heapTotal,
          external: memory.external,
          arrayBuffers: memory.arrayBuffers,
          cpuMs: (cpu.user + cpu.system) / 1000,
          elu: sinceLast.utilization,
          loopDelayP99Ms: delay.p99,
          loopDelayMaxMs: delay.max,
          ...app.subscriptionStats(),
        });
        return;
      }
      case 'heap': {
        globalThis.gc?.();
        const file = writeHeapSnapshot(join(tmpdir(), `switchyard-fanout-${process.pid}-${Date.now()}.heapsnapshot`));
        const classes = await summariseHeap(file, request.top ?? 30);
        rmSync(file, { force: true }); // hundreds of MB; the summary is what the benchmark prints
        send({ t: 'heap', file, classes });
        return;
      }
    }
  });
  send({ t: 'ready', url: `http://127.0.0.1:${address.port}` });
}

// ------------------------------------------------------------------------------------------ profile summary

/** Self time per function (samples × interval), heaviest first. */
function summariseProfile(
  profile: Profile,
  top: number,
): ProfileFigures {
  const { samples, functions } = selfTimes(profile);
  // Per package (node_modules/<name>), Node internals, our sources, and V8's own entries.
  const packages = selfTimeByPackage(functions).slice(0, 12);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, samples: samples.length, functions: functions.slice(0, top), packages };
}

// --------------------------------------------------------------------------------------------- heap summary

/** Objects and self size per constructor name, from a .heapsnapshot file, largest first. */
async function summariseHeap(file: string, top: number): Promise<Array<{ name: string; type: string; count: number; selfBytes: number }>> {
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(file)) chunks.push(chunk as Buffer);
  const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const totals = new Map<string, { name: string; type: string; count: number; selfBytes: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]!] ?? '?';
    // Strings, code and the like are grouped by type; objects by constructor name.
    const name = type === 'object' || type === 'closure' || type === 'native' ? snapshot.strings[snapshot.nodes[i + nameAt]!] ?? '?' : `(${type})`;
    const key = `${type}|${name}`;
    const entry = totals.get(key) ?? { name, type, count: 0, selfBytes: 0 };
    entry.count += 1;
    entry.selfBytes += snapshot.nodes[i + sizeAt]!;
    totals.set(key, entry);
  }
  return [...totals.values()].sort((a, b) => b.selfBytes - a.selfBytes).slice(0, top);
}

// ------------------------------------------------------------------------------------ the reference floor

/**
 * Not Switchyard: the least a server can do to deliver the same messages over the same transport, to show how
 * far the real path is from it. graphql-transport-ws by hand on a bare `ws` server: connection_init is
 * authenticated with the same TokenService; subscribe replays the task's events from Postgres, then joins one
 * listener per task on the same TaskEventFeed; each live event is serialised ONCE and written to every
 * subscriber with ws.send (no per-subscriber execution, Repeater, JSON.stringify or awaited write callback),
 * skipping (and closing) a socket whose unsent bytes pass 4 MB. No GraphQL execution at all: the result shape
 * is built by hand, so this is a floor, not an alternative implementation.
 */
function startFloor(services: Services, feed: TaskEventFeed) {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, path: '/graphql', handleProtocols: (protocols) => (protocols.has('graphql-transport-ws') ? 'graphql-transport-ws' : false) });
  const byTask = new Map<string, Map<WebSocket, string>>();
  const toResult = (e: { seq: number; kind: string; payload: unknown; createdAt: string | Date }) =>
    JSON.stringify({ data: { taskEvents: { seq: e.seq, cursor: String(e.seq), kind: e.kind, payload: e.payload, createdAt: new Date(e.createdAt).toISOString() } } });
  const frame = (id: string, json: string) => `{"id":${JSON.stringify(id)},"type":"next","payload":${json}}`;
  const sendTo = (socket: WebSocket, message: string) => {
    if (socket.bufferedAmount > 4 * 1024 * 1024) return socket.close(1008, 'Client too slow');
    socket.send(message);
  };

  const listeners = new Map<string, AsyncIterableIterator<TaskEventMessage>>();
  const listen = (taskId: string) => {
    const subscribers = new Map<WebSocket, string>();
    byTask.set(taskId, subscribers);
    const live = feed.task(taskId);
    listeners.set(taskId, live);
    void (async () => {
      for await (const message of live as AsyncIterable<TaskEventMessage>) {
        const json = toResult(message);
        for (const [socket, id] of subscribers) sendTo(socket, frame(id, json));
      }
    })();
    return subscribers;
  };

  wss.on('connection', (socket) => {
    let authenticated = false;
    const subscriptions = new Set<string>();
    socket.on('message', (data) => {
      void (async () => {
        const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: any };
        if (message.type === 'connection_init') {
          const token = String(message.payload?.authorization ?? '').replace(/^Bearer\s+/i, '');
          authenticated = (await services.tokens.authenticate(token)) !== null;
          if (!authenticated) return socket.close(4403, 'Forbidden');
          return socket.send('{"type":"connection_ack"}');
        }
        if (message.type === 'subscribe' && authenticated && message.id) {
          const taskId = String(message.payload?.variables?.id);
          const subscribers = byTask.get(taskId) ?? listen(taskId);
          // Replay, then live. An event published during the replay query would be missed: acceptable here, as the
          // benchmark publishes only once every subscriber has its replayed event.
          const rows = await services.prisma.taskEvent.findMany({ where: { taskId }, orderBy: { seq: 'asc' } });
          for (const row of rows) sendTo(socket, frame(message.id, toResult(row)));
          subscribers.set(socket, message.id);
          subscriptions.add(taskId);
        }
      })();
    });
    socket.on('close', () => {
      for (const taskId of subscriptions) {
        const subscribers = byTask.get(taskId);
        subscribers?.delete(socket);
        if (subscribers?.size === 0) {
          byTask.delete(taskId);
          void listeners.get(taskId)?.return?.();
          listeners.delete(taskId);
        }
      }
    });
  });

  return {
    listen: (port: number, host: string) =>
      new Promise<AddressInfo>((resolve) => server.listen(port, host, () => resolve(server.address() as AddressInfo))),
    subscriptionStats: () => ({ connections: wss.clients.size, sharedExecutions: byTask.size }),
    close: async () => {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

main().catch((error) => {
  console.error('fanout-server failed:', error);
  process.exit(1);
});
