// The deployment files as the tools read them: docker-compose (Debian's 1.29) resolves docker-compose.yml,
// and Caddy validates and adapts the Caddyfile. Nothing is started; no Docker daemon is needed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { caddyfile, repoRoot } from './support/caddy.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'sy-compose-'));
// An empty env file, so a developer's .env next to docker-compose.yml cannot change what is tested.
const emptyEnvFile = path.join(scratch, 'empty.env');
writeFileSync(emptyEnvFile, '');

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const requiredEnv = { POSTGRES_PASSWORD: 'pg-secret-for-test', SWITCHYARD_SECRET_KEY: 'ab'.repeat(32) };

/** Runs a command with only PATH, a scratch HOME and `env`: nothing from this shell leaks in. */
function run(command: string, args: string[], env: Record<string, string>, input?: string) {
  const result = spawnSync(command, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'), XDG_DATA_HOME: path.join(scratch, 'xdg-data'), ...env },
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function compose(args: string[], env: Record<string, string>) {
  return run('docker-compose', ['--env-file', emptyEnvFile, '-f', path.join(repoRoot, 'docker-compose.yml'), ...args], env);
}

/** YAML → JSON with the PyYAML that docker-compose itself runs on (no YAML parser among our packages). */
function yamlToJson(yaml: string): any {
  const converted = run('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {}, yaml);
  expect(converted.status, converted.stderr).toBe(0);
  return JSON.parse(converted.stdout);
}

describe('docker-compose.yml', () => {
  it('resolves with the required variables set', () => {
    const result = compose(['config', '-q'], requiredEnv);
    expect(result.status, result.stderr).toBe(0);
  });

  it('refuses to resolve without POSTGRES_PASSWORD, and says so', () => {
    const result = compose(['config', '-q'], { SWITCHYARD_SECRET_KEY: requiredEnv.SWITCHYARD_SECRET_KEY });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/Missing mandatory value/);
    expect(result.stderr).toMatch(/set POSTGRES_PASSWORD\s*$/);
  });

  it('refuses to resolve without SWITCHYARD_SECRET_KEY, and says so', () => {
    const result = compose(['config', '-q'], { POSTGRES_PASSWORD: requiredEnv.POSTGRES_PASSWORD });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/Missing mandatory value/);
    expect(result.stderr).toMatch(/set SWITCHYARD_SECRET_KEY[^\n]*\s*$/);
  });

  describe('resolved', () => {
    let config: any;
    const service = (name: string) => {
      config ??= (() => {
        const result = compose(['config'], requiredEnv);
        expect(result.status, result.stderr).toBe(0);
        return yamlToJson(result.stdout);
      })();
      return config.services[name];
    };
    const appServices = ['api', 'worker-critical', 'worker-normal', 'worker-batch'];

    it('has exactly the edge, API, three workers, Postgres, Redis and Vault', () => {
      service('api');
      expect(Object.keys(config.services).sort()).toEqual(['api', 'caddy', 'postgres', 'redis', 'vault', 'worker-batch', 'worker-critical', 'worker-normal']);
    });

    it('restarts every service after a crash or reboot', () => {
      service('api');
      expect(Object.keys(config.services)).toHaveLength(8);
      for (const name of Object.keys(config.services)) {
        expect(service(name).restart, name).toMatch(/^(always|unless-stopped|on-failure(:\d+)?)$/);
      }
    });

    it('health-checks Postgres, Redis and the API (its /readyz), and the app waits for healthy stores', () => {
      expect(service('postgres').healthcheck.test.join(' ')).toMatch(/pg_isready/);
      expect(service('redis').healthcheck.test.join(' ')).toMatch(/redis-cli.*ping/);
      expect(service('api').healthcheck.test.join(' ')).toMatch(/\/readyz/);
      for (const name of ['postgres', 'redis', 'api']) {
        const check = service(name).healthcheck;
        expect(check.interval, name).toBeTruthy();
        expect(check.retries, name).toBeGreaterThan(0);
      }
      for (const name of appServices) {
        expect(service(name).depends_on, name).toMatchObject({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
      }
    });

    it('runs Redis with AOF persistence on a volume', () => {
      const command: string[] = service('redis').command;
      const at = command.indexOf('--appendonly');
      expect(at, command.join(' ')).toBeGreaterThanOrEqual(0);
      expect(command[at + 1]).toBe('yes');
      expect(service('redis').volumes.join(' ')).toMatch(/:\/data(:rw)?$/);
      expect(service('postgres').volumes.join(' ')).toMatch(/:\/var\/lib\/postgresql\/data(:rw)?$/);
    });

    it('gives every app service the secrets from the environment, and one worker service per queue', () => {
      for (const name of appServices) {
        const env = service(name).environment;
        expect(env.DATABASE_URL, name).toBe(`postgresql://switchyard:${requiredEnv.POSTGRES_PASSWORD}@postgres:5432/switchyard`);
        expect(env.SWITCHYARD_SECRET_KEY, name).toBe(requiredEnv.SWITCHYARD_SECRET_KEY);
        expect(env.REDIS_URL, name).toBe('redis://redis:6379');
        expect(env.NODE_ENV, name).toBe('production');
        // The API checks subscriber URLs when they are given, the workers when they deliver: both read the same.
        expect(env.SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS, name).toBe('');
      }
      expect(service('postgres').environment.POSTGRES_PASSWORD).toBe(requiredEnv.POSTGRES_PASSWORD);
      expect(service('api').command).toEqual(['serve']);
      // Production defaults: no GraphiQL page, no introspection, Caddy's network trusted for X-Forwarded-For.
      expect(service('api').environment).toMatchObject({ SWITCHYARD_GRAPHIQL: 'false', SWITCHYARD_INTROSPECTION: 'false' });
      expect(service('api').environment.SWITCHYARD_TRUSTED_PROXIES).toBeTruthy();
      for (const queue of ['critical', 'normal', 'batch']) {
        const command: string[] = service(`worker-${queue}`).command;
        expect(command[0]).toBe('worker');
        expect(command[command.indexOf('--queues') + 1]).toBe(queue);
        // Long-running tasks get time to finish or hand back their job on `docker-compose stop`.
        expect(service(`worker-${queue}`).stop_grace_period).toBeTruthy();
        // Started as root only to switch to the image's user before any task child is forked (src/run-as.ts).
        expect(service(`worker-${queue}`).user).toBe('root');
        expect(service(`worker-${queue}`).environment.SWITCHYARD_RUN_AS).toBe('node');
        // A worker serves no HTTP: the image's /healthz check must not mark it unhealthy.
        expect(service(`worker-${queue}`).healthcheck).toEqual({ test: ['NONE'] }); // what `disable: true` resolves to
        // A crashing task child must leave no core dump: its memory holds an org's credentials.
        expect(service(`worker-${queue}`).ulimits).toEqual({ core: 0 });
      }
    });

    it('puts Caddy (and only Caddy) on the host ports, with the Caddyfile read-only and its certificates on a volume', () => {
      const caddy = service('caddy');
      expect(caddy.ports.map((p: any) => (typeof p === 'string' ? p : `${p.published}:${p.target}`))).toEqual(expect.arrayContaining(['80:80', '443:443']));
      for (const name of Object.keys(config.services).filter((n) => n !== 'caddy')) expect(service(name).ports, name).toBeUndefined();
      expect(caddy.volumes).toEqual(expect.arrayContaining([`${caddyfile}:/etc/caddy/Caddyfile:ro`]));
      const dataVolume = (caddy.volumes as string[]).find((v) => v.startsWith('caddy-data:'));
      expect(dataVolume).toBeDefined();
      const mountedAt = dataVolume!.split(':')[1]!;
      expect(caddy.environment.SWITCHYARD_CADDY_STORAGE.startsWith(`${mountedAt}/`)).toBe(true);
      // Each replica of `api` an upstream of its own, found through Docker's DNS.
      expect(caddy.environment).toMatchObject({ SWITCHYARD_API_DISCOVERY: 'dns', SWITCHYARD_API_DNS_NAME: 'api', SWITCHYARD_API_PORT: '4000' });
    });
  });
});

/** The Caddyfile adapted to JSON with the given environment (`caddy adapt`), failing the test if it does not adapt. */
function adapt(env: Record<string, string>): any {
  const result = run('caddy', ['adapt', '--config', caddyfile, '--adapter', 'caddyfile'], env);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

/** Every handler in an adapted config's HTTP app, nested routes included. */
function handlersOf(config: any): any[] {
  const handlers: any[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      if ('handler' in node) handlers.push(node);
      Object.values(node).forEach(walk);
    }
  };
  walk(config.apps.http);
  return handlers;
}

describe('Caddyfile', () => {
  it('passes `caddy validate`', () => {
    const result = run('caddy', ['validate', '--config', caddyfile, '--adapter', 'caddyfile'], { SWITCHYARD_CADDY_STORAGE: path.join(scratch, 'caddy-validate') });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toMatch(/Valid configuration/);
  });

  it('passes `caddy validate` configured as in production (ACME e-mail, a real domain, two replicas)', () => {
    const result = run('caddy', ['validate', '--config', caddyfile, '--adapter', 'caddyfile'], {
      SWITCHYARD_CADDY_STORAGE: path.join(scratch, 'caddy-validate-prod'),
      SWITCHYARD_DOMAIN: 'switchyard.example.com',
      SWITCHYARD_TLS: 'ops@example.com',
      SWITCHYARD_API_UPSTREAMS: 'api-1:4000 api-2:4000',
    });
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  it('adapts to the intended config: admin off, each replica an upstream, /healthz health checks, 1 MB bodies', () => {
    const config = adapt({ SWITCHYARD_CADDY_STORAGE: path.join(scratch, 'caddy-adapt'), SWITCHYARD_API_UPSTREAMS: 'api-1:4000 api-2:4000' });
    expect(config.admin).toEqual({ disabled: true });
    expect(config.storage).toMatchObject({ module: 'file_system', root: path.join(scratch, 'caddy-adapt') });
    const handlers = handlersOf(config);
    const proxies = handlers.filter((h) => h.handler === 'reverse_proxy');
    expect(proxies.length).toBeGreaterThanOrEqual(4);
    for (const proxy of proxies) {
      expect(proxy.upstreams).toEqual([{ dial: 'api-1:4000' }, { dial: 'api-2:4000' }]);
      // Liveness, not readiness: /readyz reports the shared stores, and would take every replica out at once.
      expect(proxy.health_checks.active.uri).toBe('/healthz');
      expect(proxy.load_balancing.try_duration).toBeGreaterThan(0);
      // Idle upstream connections close before Node's keep-alive (5 s) closes them under a request.
      expect(proxy.transport.keep_alive.idle_timeout).toBe(4 * 1e9);
    }
    expect(handlers.filter((h) => h.handler === 'request_body').map((h) => h.max_size)).toEqual(expect.arrayContaining([1024 * 1024, 101 * 1024 * 1024]));
    // A 100 MiB upload over a slow HTTP/1.1 link: 15 minutes to send a body, as the API allows.
    for (const server of Object.values(config.apps.http.servers) as any[]) expect(server.read_timeout, JSON.stringify(server)).toBe(15 * 60 * 1e9);
  });

  it('adapts to one upstream per address of a DNS name with SWITCHYARD_API_DISCOVERY=dns, as compose sets it', () => {
    const config = adapt({
      SWITCHYARD_CADDY_STORAGE: path.join(scratch, 'caddy-adapt-dns'),
      SWITCHYARD_API_DISCOVERY: 'dns',
      SWITCHYARD_API_DNS_NAME: 'api',
      SWITCHYARD_API_PORT: '4000',
    });
    const proxies = handlersOf(config).filter((h) => h.handler === 'reverse_proxy');
    expect(proxies.length).toBeGreaterThanOrEqual(4);
    for (const proxy of proxies) {
      expect(proxy.upstreams).toBeUndefined();
      expect(proxy.dynamic_upstreams).toEqual({ source: 'a', name: 'api', port: '4000', refresh: 5 * 1e9 });
      // Caddy 2.6 keeps no health state for dynamic upstreams: a refused connection is retried on another.
      expect(proxy.health_checks).toBeUndefined();
      expect(proxy.load_balancing.try_duration).toBeGreaterThan(0);
    }
  });
});
