// A graphql-ws client over a real `ws` socket, collecting what a subscription delivers.
import { once } from 'node:events';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { waitFor } from './worker-harness.js';

export interface Collected<T = any> {
  events: T[];
  errors: unknown[];
  done: Promise<void>;
  completed: boolean;
  dispose(): void;
}

export function wsClient(httpUrl: string, token: string | null, options: { lazy?: boolean } = {}): Client & { closeCodes: number[] } {
  const closeCodes: number[] = [];
  const client = createClient({
    url: `${httpUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    lazy: options.lazy ?? true,
    retryAttempts: 0,
    on: { closed: (event) => void closeCodes.push((event as { code: number }).code) },
  });
  return Object.assign(client, { closeCodes });
}

export function collect<T = any>(client: Client, query: string, variables: Record<string, unknown> = {}): Collected<T> {
  const result: Collected<T> = { events: [], errors: [], completed: false, done: Promise.resolve(), dispose: () => undefined };
  result.done = new Promise<void>((resolve) => {
    result.dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          if (value.errors) result.errors.push(...value.errors);
          if (value.data) result.events.push(value.data as T);
        },
        error: (error) => {
          result.errors.push(error);
          resolve();
        },
        complete: () => {
          result.completed = true;
          resolve();
        },
      },
    );
  });
  return result;
}

/** A bare graphql-transport-ws client on `ws`, so the test decides when (and whether) to read, and what to send. */
export async function rawClient(api: { url: string }, token: string) {
  const ws = new WebSocket(`${api.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: any[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  await waitFor(async () => messages.some((m) => m.type === 'connection_ack'), 5000, 'connection_ack');
  return { ws, messages, closed };
}
