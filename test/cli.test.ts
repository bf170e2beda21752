// The `switchyard` command as an operator runs it: the built CLI (bin/switchyard.js → dist/) in a child
// process, against its own Postgres schema. Build first (`npx tsc -p tsconfig.json`) when src/ changed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration } from '../src/cli/token-command.js';
import { UsageError } from '../src/cli/usage-error.js';
import { migrate } from '../src/db/migrate.js';
import { createPrisma, type PrismaClient } from '../src/db/prisma.js';
import { AuditService } from '../src/domain/audit/audit-service.js';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { TokenService } from '../src/domain/auth/token-service.js';
import { dropSchema, testDatabaseUrl, testRedisUrl } from './support/harness.js';
import { waitFor } from './support/worker-harness.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repoRoot, 'bin', 'switchyard.js');
const schema = `t_cli_${randomBytes(4).toString('hex')}`;
const databaseUrl = `${testDatabaseUrl}?schema=${schema}`;
const tokenLine = /^syt_[A-Za-z0-9_-]{43}\n$/;
/** Nothing listens on port 1. */
const unreachableDatabase = 'postgresql://postgres@127.0.0.1:1/switchyard';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let tempDir: string;
let prisma: PrismaClient;
let tokens: TokenService;

/**
 * Runs the CLI with a clean environment: only what is given here, nothing inherited from vitest. `onStdout` sees
 * its output as it comes, with the process (to send it a signal). With `command`, runs `<command> <args>` in the
 * checkout (npm, say) instead of `switchyard <args>`.
 */
function run(
  args: string[],
  env: Record<string, string> = {},
  onStdout?: (output: string, child: ChildProcess) => void,
  stdin?: string,
  command?: string,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command ?? process.execPath, command ? args : [bin, ...args], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tempDir,
        NODE_ENV: 'test',
        DATABASE_URL: databaseUrl,
        REDIS_URL: testRedisUrl,
        LOG_LEVEL: 'warn',
        SWITCHYARD_KEY_FILE: path.join(tempDir, 'secret-key'),
        ...env,
      },
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] as const,
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      onStdout?.(stdout, child);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Commands that do not depend on each other start together in beforeAll; each test awaits its own. */
const pending: Record<string, Promise<RunResult>> = {};

beforeAll(async () => {
  expect(existsSync(path.join(repoRoot, 'dist', 'cli', 'main.js')), 'build dist/ first: npx tsc -p tsconfig.json').toBe(true);
  tempDir = await mkdtemp(path.join(tmpdir(), 'switchyard-cli-'));
  // The CLI migrates on every token command anyway; doing it once here first keeps the concurrent runs
  // below from queueing behind each other on the migration lock.
  await migrate(databaseUrl);
  prisma = createPrisma(databaseUrl, { poolSize: 2 });
  tokens = new TokenService(prisma, new AuditService(prisma));
  // Each run costs a Node start-up (about 1.5 s of CPU), so there are few, and they are spread so that two
  // run at a time along the create → list → revoke chain the token tests follow.
  const createAdmin = run(['token', 'create', '--name', 'admin', '--role', 'OWNER']);
  const list = createAdmin.then(() => run(['token', 'list']));
  Object.assign(pending, {
    createAdmin,
    list,
    help: run(['help']),
    unknownCommand: run(['frobnicate']),
    badConfig: run(['token', 'list'], { PORT: 'abc', REDIS_URL: 'nope' }),
    missingName: createAdmin.then(() => run(['token', 'create', '--role', 'OWNER'])),
    badRole: list.then(() => run(['token', 'create', '--name', 'bad-role', '--role', 'KING'])),
    emptyExpiry: createAdmin.then(() => run(['token', 'create', '--name', 'no-expiry', '--expires-in', ''])),
    // Refused before anything starts: no migration, no server, no worker.
    badWorkerOption: list.then(() => run(['worker', '--queue', 'critical'])),
    serveWithArguments: list.then(() => run(['serve', '--queues', 'critical'])),
    // The first token's name becomes its user's: a / would make audit actors (user/token) ambiguous.
    slashInName: list.then(() => run(['token', 'create', '--name', 'ci/deploy', '--role', 'OWNER'])),
    // Mistakes in the arguments are found before the database is touched: usage (2), not a failed migration (1).
    missingNameNoDatabase: run(['token', 'create', '--role', 'OWNER'], { DATABASE_URL: unreachableDatabase }),
    unknownSubcommandNoDatabase: run(['token', 'frobnicate'], { DATABASE_URL: unreachableDatabase }),
    badExpiryNoDatabase: run(['token', 'create', '--name', 'x', '--expires-in', '1w'], { DATABASE_URL: unreachableDatabase }),
  });
});

afterAll(async () => {
  await Promise.allSettled(Object.values(pending));
  await prisma?.$disconnect();
  await dropSchema(schema);
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe('token create, list, revoke', { timeout: 60_000 }, () => {
  let secret: string;

  it('create prints only the token on stdout and exits 0', async () => {
    const result = await pending.createAdmin!;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(tokenLine);
    secret = result.stdout.trim();
    expect(result.stderr).toContain('Created OWNER token "admin"');
    expect(result.stderr).not.toContain(secret);
  });

  it('list shows prefix and name, never the secret', async () => {
    const result = await pending.list!;
    expect(result.code, result.stderr).toBe(0);
    const row = await prisma.apiToken.findFirstOrThrow({ where: { name: 'admin' } });
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('ID\tPREFIX\tNAME\tROLE\tUSER\tSTATE\tLAST USED');
    expect(lines).toHaveLength(2);
    expect(lines[1]!.split('\t')).toEqual([row.id, secret.slice(0, 12), 'admin', 'OWNER', 'admin', 'active', '-']);
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(result.stdout + result.stderr).not.toContain(secret.slice(12));
    expect(result.stdout).not.toContain(row.hash);
  });

  it('the created token authenticates as an OWNER, and only its hash is stored', async () => {
    expect(await tokens.authenticate(secret)).toMatchObject({ kind: 'token', role: 'OWNER', tokenName: 'admin', userName: 'admin' });
    const rows = await prisma.apiToken.findMany();
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row).toMatchObject({ name: 'admin', role: 'OWNER', prefix: secret.slice(0, 12), expiresAt: null, revokedAt: null });
    expect(row.hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(secret.slice(12));
    const audit = await prisma.auditEntry.findMany({ where: { action: 'token.create' } });
    expect(audit.map((e) => [e.actor, e.targetId])).toEqual([['cli', row.id]]);
  });

  it('revoke <id> makes the token stop authenticating', async () => {
    const row = await prisma.apiToken.findFirstOrThrow({ where: { name: 'admin' } });
    const result = await run(['token', 'revoke', row.id]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Revoked token "admin"');
    expect(result.stdout).toBe('');
    expect(await tokens.authenticate(secret)).toBeNull();
    expect((await prisma.apiToken.findUniqueOrThrow({ where: { id: row.id } })).revokedAt).not.toBeNull();
    expect(await prisma.auditEntry.count({ where: { action: 'token.revoke', actor: 'cli', targetId: row.id } })).toBe(1);
  });

  it('revoke - takes the token itself on stdin (a leaked token, kept out of argv); one that matches nothing is not quoted back', async () => {
    const { secret: leaked, token } = await tokens.create(cliPrincipal, { name: 'leaked', role: 'VIEWER' });
    const result = await run(['token', 'revoke', '-'], {}, undefined, `${leaked}\n`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Revoked token "leaked"');
    expect(result.stdout + result.stderr).not.toContain(leaked);
    expect(await tokens.authenticate(leaked)).toBeNull();
    expect((await prisma.apiToken.findUniqueOrThrow({ where: { id: token.id } })).revokedAt).not.toBeNull();

    const unknown = `syt_${randomBytes(32).toString('base64url')}`;
    const refused = await run(['token', 'revoke', '-'], {}, undefined, unknown);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('No single token matches that id, prefix or token');
    expect(refused.stdout + refused.stderr).not.toContain(unknown);
  });

  it('refuses a token itself as an argument (argv shows in ps and shell history), without revoking it or quoting it', async () => {
    const { secret, token } = await tokens.create(cliPrincipal, { name: 'on-argv', role: 'VIEWER' });
    const result = await run(['token', 'revoke', secret]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Pass a token itself on stdin (`switchyard token revoke -`), never as an argument');
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect((await prisma.apiToken.findUniqueOrThrow({ where: { id: token.id } })).revokedAt).toBeNull();
  });
});

describe('bad usage', { timeout: 60_000 }, () => {
  const cases: Array<[string, RegExp]> = [
    ['unknownCommand', /Unknown command "frobnicate"/],
    ['missingName', /token create needs --name/],
    ['badRole', /role/],
    ['emptyExpiry', /--expires-in must look like 30m, 12h or 90d \(got ""\)/],
    ['badWorkerOption', /Unknown option '--queue'/],
    ['serveWithArguments', /"serve" takes no arguments \(got --queues critical\)/],
    ['slashInName', /must not contain \/ \(it names a user here\)/],
    ['missingNameNoDatabase', /token create needs --name/],
    ['unknownSubcommandNoDatabase', /usage: switchyard token create --name NAME/],
    ['badExpiryNoDatabase', /--expires-in must look like 30m, 12h or 90d \(got "1w"\)/],
  ];
  for (const [name, message] of cases) {
    it(`${name} exits 2 with a message on stderr and nothing on stdout`, async () => {
      const result = await pending[name]!;
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe('');
      // A usage error is a message, not a crash report.
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('--expires-in takes 1 minute up to 3650 days, and refuses what Postgres could not store', () => {
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('30m')).toBe(30 * 60_000);
    expect(parseDuration('3650d')).toBe(3650 * 86_400_000);
    for (const value of ['', '0m', '0d', '3651d', '9999999d', '99999999999999999999d', '1w']) expect(() => parseDuration(value), value).toThrow(UsageError);
  });

  it('a refused create creates no token', async () => {
    await Promise.all([pending.missingName, pending.badRole, pending.emptyExpiry, pending.slashInName]);
    // Only the tokens (and users) the tests above created on purpose.
    expect(await prisma.apiToken.count({ where: { name: { notIn: ['admin', 'leaked', 'on-argv'] } } })).toBe(0);
    expect(await prisma.user.count({ where: { name: { notIn: ['admin', 'leaked', 'on-argv'] } } })).toBe(0);
  });
});

describe('configuration', { timeout: 60_000 }, () => {
  it('invalid configuration exits 1 and names every problem at once', async () => {
    const result = await pending.badConfig!;
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('Invalid configuration');
    expect(result.stderr).toMatch(/PORT/);
    expect(result.stderr).toMatch(/REDIS_URL/);
  });
});

describe('start-up failures', { timeout: 60_000 }, () => {
  it('`start` whose API port is taken exits 1, after closing the workers it had started: no heartbeat is left beating', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    await withPrefix('cli_start', async (prefix, redis) => {
      const { port } = blocker.address() as AddressInfo;
      const result = await run(['start', '--concurrency', 'critical=1,normal=1,batch=1'], { PORT: String(port), HOST: '127.0.0.1', SWITCHYARD_QUEUE_PREFIX: prefix });
      expect(result.code, result.stdout + result.stderr).toBe(1);
      const fatal = result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line)).find((line) => line.level === 60);
      expect(fatal).toMatchObject({ msg: 'switchyard failed to start', err: { code: 'EADDRINUSE' } });
      const left = await redis.keys(`${prefix}:worker:*`);
      expect(left, JSON.stringify(await Promise.all(left.map(async (k) => [k, await redis.ttl(k), await redis.get(k)])))).toEqual([]);
    }).finally(() => blocker.close());
  });
});

/** Runs `body` with a fresh Redis key prefix for a `start` process, and deletes the prefix's keys after. */
async function withPrefix(name: string, body: (prefix: string, redis: Redis) => Promise<void>): Promise<void> {
  const redis = new Redis(testRedisUrl);
  const prefix = `${name}_${randomBytes(4).toString('hex')}`;
  try {
    await body(prefix, redis);
  } finally {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

describe('signals while starting', { timeout: 60_000 }, () => {
  it('SIGTERM during the start-up is not lost: the process finishes the step under way, then shuts down in order and exits 0', async () => {
    await withPrefix('cli_sigterm', async (prefix, redis) => {
      let signalled = false;
      // Sent as soon as the migrations are done, while the worker is still starting (before this change the
      // handlers were installed only once everything had started, and the signal killed the process outright).
      const result = await run(['start'], { PORT: '0', HOST: '127.0.0.1', SWITCHYARD_QUEUE_PREFIX: prefix, LOG_LEVEL: 'info' }, (output, child) => {
        if (!signalled && output.includes('"msg":"database schema is up to date"')) {
          signalled = true;
          child.kill('SIGTERM');
        }
      });
      expect(signalled).toBe(true);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const messages = result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line).msg);
      expect(messages).toContain('shutting down');
      expect(messages.at(-1)).toBe('stopped');
      expect(await redis.keys(`${prefix}:worker:*`)).toEqual([]);
    });
  });
});

describe('npm start', { timeout: 60_000 }, () => {
  it('stopped with SIGTERM (as a supervisor stops it), stops the server it runs, in order, instead of leaving it running', async () => {
    // npm runs a script through `sh -c`, and the shell did not pass npm's SIGTERM on: npm exited and the server
    // went on without it. The script execs node, so npm's signal reaches the server.
    await withPrefix('cli_npm_start', async (prefix, redis) => {
      let signalled = false;
      const env = { PORT: '0', HOST: '127.0.0.1', SWITCHYARD_QUEUE_PREFIX: prefix, LOG_LEVEL: 'info', npm_config_update_notifier: 'false' };
      // A server left running keeps the output open, so `run` would not settle (and the test times out).
      const result = await run(['start', '--silent'], env, (output, child) => {
        if (!signalled && /"url":"http:\/\/127\.0\.0\.1:\d+\/graphql"/.test(output)) {
          signalled = true;
          child.kill('SIGTERM');
        }
      }, undefined, 'npm');
      expect(signalled, result.stdout + result.stderr).toBe(true);
      const messages = result.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line).msg);
      expect(messages).toContain('shutting down');
      expect(messages.at(-1)).toBe('stopped');
      expect(await redis.keys(`${prefix}:worker:*`)).toEqual([]);
    });
  });
});

describe('start, stopped while a request is in flight', { timeout: 60_000 }, () => {
  it('stops its workers taking jobs at once, not only once the API has finished its requests', async () => {
    // The API's close waits for requests in flight (an upload still streaming, for one); the workers used to be
    // closed only after it, taking jobs all the while, to be cut off at the shutdown deadline.
    let held: Socket | null = null;
    await withPrefix('cli_inflight', async (prefix, redis) => {
      let workerClosedWhileHeld: boolean | null = null;
      const result = await run(['start'], { PORT: '0', HOST: '127.0.0.1', SWITCHYARD_QUEUE_PREFIX: prefix, LOG_LEVEL: 'info' }, (output, child) => {
        const url = /"url":"http:\/\/127\.0\.0\.1:(\d+)\/graphql"/.exec(output)?.[1];
        if (!url || held) return;
        // A request whose body never ends (chunked, no last chunk): the API's close waits for it.
        held = connect(Number(url), '127.0.0.1', () => {
          held!.write(`POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n`);
          setTimeout(async () => {
            child.kill('SIGTERM');
            // The worker's heartbeat key goes when its close is done (no task was running: nothing to drain).
            const gone = await waitFor(async () => (await redis.keys(`${prefix}:worker:*`)).length === 0, 5000, 'the worker to close').then(() => true, () => false);
            workerClosedWhileHeld = gone && !held!.destroyed;
            held!.destroy(); // the request ends, and the API's close with it
          }, 300);
        });
      });
      expect(workerClosedWhileHeld).toBe(true);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line).msg).at(-1)).toBe('stopped');
    });
  });
});

describe('worker, stopped while it waits for Redis at start-up', { timeout: 60_000 }, () => {
  it('exits by the shutdown deadline, with 1 and why, instead of waiting for Redis for ever', async () => {
    // BullMQ's connection waits for Redis without a limit, so the start-up never ended, and a signal then was only
    // noted, to be acted on once it did: the process stayed up, deaf to SIGTERM.
    const started = Date.now();
    let signalledAt = 0;
    const result = await run(
      ['worker'],
      { REDIS_URL: 'redis://127.0.0.1:1', SWITCHYARD_QUEUE_PREFIX: `cli_noredis_${randomBytes(4).toString('hex')}`, SWITCHYARD_SHUTDOWN_TIMEOUT_MS: '1000', SWITCHYARD_KILL_GRACE_MS: '500' },
      (output, child) => {
        if (!signalledAt && output.includes('Redis is not reachable yet')) {
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    );
    expect(signalledAt, result.stdout + result.stderr).toBeGreaterThan(started);
    expect(result.code).toBe(1);
    expect(result.stdout + result.stderr).toContain('shutdown took too long');
    // 1 s drain + 2 × 0.5 s kill grace + 5 s margin after the signal.
    expect(Date.now() - signalledAt).toBeLessThan(12_000);
  });
});

describe('help', { timeout: 60_000 }, () => {
  it('exits 0 and prints usage', async () => {
    const result = await pending.help!;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Usage:');
    expect(result.stdout).toContain('switchyard token create');
    expect(result.stderr).toBe('');
  });
});
