// The real Caddy (the repo's Caddyfile) as a child process in front of test API replicas, with its internal
// CA trusted by this process's clients only: nothing global (no NODE_TLS_REJECT_UNAUTHORIZED, no trust store).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.js';
import { waitFor } from './worker-harness.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const caddyfile = path.join(repoRoot, 'Caddyfile');

export interface EdgeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = any>(): T;
}

export interface RunningCaddy {
  /** https://localhost:<port> */
  url: string;
  /** http://localhost:<port> (redirects to HTTPS) */
  httpUrl: string;
  httpsPort: number;
  httpPort: number;
  /** Caddy's storage (also its HOME): certificates, keys, the internal CA. */
  dir: string;
  /** The internal CA's root certificate (PEM). */
  ca: Buffer;
  agent: https.Agent;
  /** Caddy's stdout/stderr (JSON log lines, access log included). */
  logLines: string[];
  process: ChildProcess;
  request(pathname: string, options?: { method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<EdgeResponse>;
  stop(): Promise<void>;
}

export function edgeRequest(agent: https.Agent, url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<EdgeResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: options.method ?? 'GET', headers: options.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error(`timeout: ${options.method ?? 'GET'} ${url}`)));
    req.end(options.body);
  });
}

/** Runs `caddy run` with the repo's Caddyfile in front of `upstreams` ("host:port"), and waits until it answers. */
export async function startCaddy(upstreams: string[], options: { domain?: string; config?: string; env?: Record<string, string> } = {}): Promise<RunningCaddy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sy-caddy-'));
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  const logLines: string[] = [];
  const child = spawn('caddy', ['run', '--config', options.config ?? caddyfile, '--adapter', 'caddyfile'], {
    cwd: dir,
    // Only what Caddy needs: HOME/XDG point into the temp dir, so it writes nothing anywhere else.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_DATA_HOME: path.join(dir, 'xdg-data'),
      XDG_CONFIG_HOME: path.join(dir, 'xdg-config'),
      SWITCHYARD_DOMAIN: options.domain ?? 'localhost',
      SWITCHYARD_TLS: 'internal',
      SWITCHYARD_HTTPS_PORT: String(httpsPort),
      SWITCHYARD_HTTP_PORT: String(httpPort),
      SWITCHYARD_API_UPSTREAMS: upstreams.join(' '),
      SWITCHYARD_CADDY_STORAGE: dir,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      logLines.push(...parts.filter(Boolean));
    });
  }

  const stop = async () => {
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  };

  const rootPath = path.join(dir, 'pki', 'authorities', 'local', 'root.crt');
  const url = `https://localhost:${httpsPort}`;
  let agent = new https.Agent();
  let ca = Buffer.alloc(0);
  try {
    let last: unknown = 'no root certificate yet';
    await waitFor(async () => {
      if (exitCode !== undefined) throw new Error(`caddy exited with ${exitCode}:\n${logLines.join('\n')}`);
      // Caddy writes its root, intermediate and leaf certificates as it starts: (re)read the root until a
      // request verifies against it (a half-written file must not stick).
      if (!existsSync(rootPath)) return false;
      const pem = readFileSync(rootPath);
      if (!pem.includes('-----END CERTIFICATE-----')) return false;
      if (!pem.equals(ca)) {
        agent.destroy();
        ca = pem;
        agent = new https.Agent({ ca, keepAlive: true });
      }
      try {
        const res = await edgeRequest(agent, `${url}/healthz`);
        last = `${res.status} ${res.text}`;
        return res.status === 200;
      } catch (error) {
        last = error;
        return false;
      }
    }, 20_000, 'Caddy to answer /healthz over HTTPS').catch((error: Error) => {
      throw new Error(`${error.message}; last answer: ${String(last)}\n${logLines.slice(-20).join('\n')}`);
    });
    return {
      url,
      httpUrl: `http://localhost:${httpPort}`,
      httpsPort,
      httpPort,
      dir,
      ca,
      agent,
      logLines,
      process: child,
      request: (pathname, requestOptions) => edgeRequest(agent, `${url}${pathname}`, requestOptions),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
