// RedisTaskEventPublisher against a real Redis of its own: a private redis-server on a free port, so the test
// can empty the server's script cache (SCRIPT FLUSH is server-wide) without touching other test files' BullMQ.
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allTaskEventsChannel, RedisTaskEventPublisher, taskEventChannel, type TaskEventMessage } from '../src/events/task-event-bus.js';
import { freePort } from './support/net.js';
import { waitFor } from './support/worker-harness.js';

const prefix = 'sytest-event-bus';
let server: ChildProcess;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  // Until the server answers (each try a client of its own: a failed lazy connect is not retried).
  await waitFor(
    async () => {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return true;
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    },
    5000,
    'the private redis-server to answer',
  );
});

afterAll(() => {
  server?.kill();
});

function event(taskId: string, seq: number): TaskEventMessage {
  return {
    taskId,
    seq,
    kind: 'PROGRESS',
    payload: { percent: seq * 10 },
    createdAt: new Date(Date.UTC(2026, 10, 29, 0, 0, seq)).toISOString(),
    task: { status: 'RUNNING', type: 'DIAGNOSTIC', queue: 'NORMAL', source: 'API', orgAlias: 'bus', progress: seq * 10 },
  };
}

/** Subscribes to the given channels; `next(n)` waits for n more messages, as [channel, parsed message]. */
async function listen(channels: string[]) {
  const subscriber = new Redis(url);
  await subscriber.subscribe(...channels);
  const received: Array<[string, TaskEventMessage]> = [];
  subscriber.on('message', (channel: string, raw: string) => received.push([channel, JSON.parse(raw) as TaskEventMessage]));
  return {
    received,
    waitFor: (count: number) => waitFor(async () => received.length >= count, 2000, `${count} messages (got ${received.length})`),
    close: () => subscriber.disconnect(),
  };
}

describe('RedisTaskEventPublisher', () => {
  it("publishes every event to its task's channel and to the channel of all events, in order, in one command", async () => {
    const redis = new Redis(url);
    const global = allTaskEventsChannel(prefix);
    const a = taskEventChannel(prefix, 'task-a');
    const b = taskEventChannel(prefix, 'task-b');
    const listener = await listen([global, a, b]);
    const monitor = await redis.duplicate().monitor();
    const commands: string[] = [];
    // Commands the clients sent (MONITOR also shows those a script ran, with the source `lua`).
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (!source.includes('lua')) commands.push(String(args[0]).toLowerCase());
    });
    try {
      const publisher = new RedisTaskEventPublisher(redis, prefix);
      await publisher.publish([event('task-a', 1), event('task-b', 1), event('task-a', 2)]);
      await listener.waitFor(6);
      const on = (channel: string) => listener.received.filter(([c]) => c === channel).map(([, m]) => `${m.taskId}#${m.seq}`);
      expect(on(global)).toEqual(['task-a#1', 'task-b#1', 'task-a#2']);
      expect(on(a)).toEqual(['task-a#1', 'task-a#2']);
      expect(on(b)).toEqual(['task-b#1']);
      expect(listener.received.find(([c]) => c === a)![1]).toEqual(event('task-a', 1));
      // One command from the publisher's connection (the first use on this server adds the script's EVAL).
      expect(commands.filter((name) => name === 'publish')).toEqual([]);
      expect(commands.filter((name) => name === 'evalsha' || name === 'eval').length).toBeLessThanOrEqual(2);

      // An empty announcement sends nothing.
      const before = commands.length;
      await publisher.publish([]);
      await redis.ping();
      // MONITOR reports on its own connection: wait until it has seen the ping, so it has seen what came before.
      await waitFor(async () => commands.indexOf('ping', before) >= 0, 2000, 'MONITOR to show the ping');
      expect(commands.slice(before).filter((name) => name !== 'ping')).toEqual([]);
    } finally {
      monitor.disconnect();
      listener.close();
      redis.disconnect();
    }
  });

  it('still publishes after the server lost its scripts (restart, SCRIPT FLUSH)', async () => {
    const redis = new Redis(url);
    const global = allTaskEventsChannel(prefix);
    const listener = await listen([global]);
    try {
      const publisher = new RedisTaskEventPublisher(redis, prefix);
      await publisher.publish([event('task-c', 1)]);
      expect(await redis.script('FLUSH')).toBe('OK');
      await publisher.publish([event('task-c', 2)]);
      await publisher.publish([event('task-c', 3)]);
      await listener.waitFor(3);
      expect(listener.received.map(([, m]) => m.seq)).toEqual([1, 2, 3]);
    } finally {
      listener.close();
      redis.disconnect();
    }
  });
});
