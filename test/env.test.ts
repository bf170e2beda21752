// loadEnv(source) reads only its source (and the files its *_FILE variables name): these tests pass their own
// environment object and never touch process.env.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSecretKey, EnvError, loadEnv } from '../src/env.js';

/** Runs loadEnv and returns the EnvError it throws (fails the test when it does not throw one). */
function envError(source: Record<string, string | undefined>): EnvError {
  try {
    loadEnv(source);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvError);
    return error as EnvError;
  }
  throw new Error(`loadEnv accepted ${JSON.stringify(source)}`);
}

/** The variable names an EnvError complains about, from its problem lines ("NAME message"). */
function problemVariables(error: EnvError): string[] {
  return error.problems.map((problem) => problem.split(' ')[0]!).sort();
}

const hexKey = randomBytes(32).toString('hex');
const base64Key = randomBytes(32).toString('base64');

describe('loadEnv defaults', () => {
  it('fills every variable from an empty environment', () => {
    const env = loadEnv({});
    expect(env.PORT).toBe(4000);
    expect(env.HOST).toBe('127.0.0.1');
    expect(env.DATABASE_URL).toBe('postgresql://postgres@127.0.0.1:5432/switchyard');
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.NODE_ENV).toBe('development');
    expect(env.LOG_LEVEL).toBe('info');
    expect(env.SWITCHYARD_SECRET_KEY).toBeUndefined();
    expect(env.SWITCHYARD_QUEUE_PREFIX).toBe('switchyard');
    expect(env.SWITCHYARD_GRAPHIQL).toBe(true);
    expect(env.SWITCHYARD_WEBHOOK_DELIVERY_RETENTION_DAYS).toBe(30);
  });

  it('ignores variables it does not know', () => {
    const env = loadEnv({ PATH: '/usr/bin', HOME: '/root', SOMETHING_ELSE: 'x' });
    expect(env).not.toHaveProperty('PATH');
    expect(env).not.toHaveProperty('SOMETHING_ELSE');
    expect(env.PORT).toBe(4000);
  });

  it('does not read process.env when given a source', () => {
    const saved = process.env.PORT;
    process.env.PORT = 'not-a-port';
    try {
      expect(loadEnv({}).PORT).toBe(4000);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

describe('loadEnv overrides', () => {
  it('takes every given value, coercing numbers and booleans', () => {
    const env = loadEnv({
      NODE_ENV: 'test',
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://app:pw@db.internal:6543/switchyard_prod',
      REDIS_URL: 'rediss://cache.internal:6380/2',
      LOG_LEVEL: 'debug',
      SWITCHYARD_SECRET_KEY: hexKey,
      SWITCHYARD_KEY_FILE: '/etc/switchyard/key',
      SWITCHYARD_QUEUE_PREFIX: 'sy_prod-1',
      SWITCHYARD_GRAPHIQL: 'false',
      SWITCHYARD_SHUTDOWN_TIMEOUT_MS: '2500',
    });
    expect(env).toMatchObject({
      NODE_ENV: 'test',
      PORT: 8080,
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://app:pw@db.internal:6543/switchyard_prod',
      REDIS_URL: 'rediss://cache.internal:6380/2',
      LOG_LEVEL: 'debug',
      SWITCHYARD_SECRET_KEY: hexKey,
      SWITCHYARD_KEY_FILE: '/etc/switchyard/key',
      SWITCHYARD_QUEUE_PREFIX: 'sy_prod-1',
      SWITCHYARD_GRAPHIQL: false,
      SWITCHYARD_SHUTDOWN_TIMEOUT_MS: 2500,
    });
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('reads SWITCHYARD_GRAPHIQL=%s as %s', (value, expected) => {
    expect(loadEnv({ SWITCHYARD_GRAPHIQL: value }).SWITCHYARD_GRAPHIQL).toBe(expected);
  });

  it('accepts PORT 0 and 65535 but nothing outside', () => {
    expect(loadEnv({ PORT: '0' }).PORT).toBe(0);
    expect(loadEnv({ PORT: '65535' }).PORT).toBe(65535);
    expect(problemVariables(envError({ PORT: '65536' }))).toEqual(['PORT']);
    expect(problemVariables(envError({ PORT: '-1' }))).toEqual(['PORT']);
    expect(problemVariables(envError({ PORT: '80.5' }))).toEqual(['PORT']);
    expect(problemVariables(envError({ PORT: 'http' }))).toEqual(['PORT']);
  });

  it('bounds SWITCHYARD_MAX_UPLOAD_BYTES by what an artifact size column holds (2^31 - 1)', () => {
    expect(loadEnv({ SWITCHYARD_MAX_UPLOAD_BYTES: String(2 ** 31 - 1) }).SWITCHYARD_MAX_UPLOAD_BYTES).toBe(2 ** 31 - 1);
    expect(problemVariables(envError({ SWITCHYARD_MAX_UPLOAD_BYTES: String(2 ** 31) }))).toEqual(['SWITCHYARD_MAX_UPLOAD_BYTES']);
  });

  it('bounds durations by Node\'s longest timer (a longer one would fire after 1 ms), the shutdown deadline included', () => {
    for (const name of ['SWITCHYARD_SHUTDOWN_TIMEOUT_MS', 'SWITCHYARD_KILL_GRACE_MS', 'SWITCHYARD_RECONCILE_INTERVAL_MS', 'SWITCHYARD_CANCEL_POLL_MS', 'SWITCHYARD_HEARTBEAT_MS', 'SWITCHYARD_JOB_LOCK_MS', 'SWITCHYARD_ORG_LOCK_LEASE_MS', 'SWITCHYARD_ORG_LOCK_POLL_MS']) {
      expect(problemVariables(envError({ [name]: String(2 ** 31) })), name).toEqual([name]);
    }
    expect(loadEnv({ SWITCHYARD_RECONCILE_INTERVAL_MS: String(2 ** 31 - 1) }).SWITCHYARD_RECONCILE_INTERVAL_MS).toBe(2 ** 31 - 1);
    // Each within the bound, the deadline they make (drain + 2 × grace + 5 s) not.
    const error = envError({ SWITCHYARD_SHUTDOWN_TIMEOUT_MS: String(2 ** 31 - 10_000), SWITCHYARD_KILL_GRACE_MS: '30000' });
    expect(problemVariables(error)).toEqual(['SWITCHYARD_SHUTDOWN_TIMEOUT_MS']);
    expect(error.message).toContain('plus 2 × SWITCHYARD_KILL_GRACE_MS plus 5000 must be at most 2147483647');
    expect(loadEnv({ SWITCHYARD_SHUTDOWN_TIMEOUT_MS: String(2 ** 31 - 1 - 65_000) }).SWITCHYARD_SHUTDOWN_TIMEOUT_MS).toBe(2 ** 31 - 1 - 65_000);
    // Reported together with another variable's mistake, as every problem is.
    expect(problemVariables(envError({ SWITCHYARD_SHUTDOWN_TIMEOUT_MS: String(2 ** 31 - 10_000), LOG_LEVEL: 'loud' }))).toEqual(['LOG_LEVEL', 'SWITCHYARD_SHUTDOWN_TIMEOUT_MS']);
    // The heartbeat is waited for in multiples of up to three.
    expect(problemVariables(envError({ SWITCHYARD_HEARTBEAT_MS: String(Math.floor((2 ** 31 - 1) / 3) + 1) }))).toEqual(['SWITCHYARD_HEARTBEAT_MS']);
  });

  it('bounds SWITCHYARD_GRAPHQL_MAX_NESTING to 10..1000, default 100', () => {
    expect(loadEnv({}).SWITCHYARD_GRAPHQL_MAX_NESTING).toBe(100);
    expect(loadEnv({ SWITCHYARD_GRAPHQL_MAX_NESTING: '250' }).SWITCHYARD_GRAPHQL_MAX_NESTING).toBe(250);
    for (const value of ['9', '1001', 'deep']) {
      expect(problemVariables(envError({ SWITCHYARD_GRAPHQL_MAX_NESTING: value }))).toEqual(['SWITCHYARD_GRAPHQL_MAX_NESTING']);
    }
  });
});

describe('address lists', () => {
  it('reads SWITCHYARD_TRUSTED_PROXIES and SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS as lists of addresses and ranges', () => {
    expect(loadEnv({})).toMatchObject({ SWITCHYARD_TRUSTED_PROXIES: ['127.0.0.1', '::1'], SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS: [] });
    const env = loadEnv({ SWITCHYARD_TRUSTED_PROXIES: ' 172.16.0.0/12, ::1 ,', SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS: '10.20.0.0/16,192.168.1.7,fd00::/8' });
    expect(env.SWITCHYARD_TRUSTED_PROXIES).toEqual(['172.16.0.0/12', '::1']);
    expect(env.SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS).toEqual(['10.20.0.0/16', '192.168.1.7', 'fd00::/8']);
    expect(loadEnv({ SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS: '' }).SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS).toEqual([]);
  });

  it('refuses an entry that is not an address or a range, naming it, instead of leaving it out', () => {
    const error = envError({ SWITCHYARD_TRUSTED_PROXIES: 'caddy,127.0.0.1', SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS: '10.0.0.0/33,fd00::/129,10.0.0.0/8/1,10.0.0.0/x,10.1.0.0/16' });
    expect(problemVariables(error)).toEqual(['SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS', 'SWITCHYARD_TRUSTED_PROXIES']);
    expect(error.problems.find((p) => p.startsWith('SWITCHYARD_TRUSTED_PROXIES'))).toMatch(/: caddy$/);
    expect(error.problems.find((p) => p.startsWith('SWITCHYARD_NOTIFICATION'))).toMatch(/: 10\.0\.0\.0\/33, fd00::\/129, 10\.0\.0\.0\/8\/1, 10\.0\.0\.0\/x$/);
  });
});

describe('SWITCHYARD_RUN_AS', () => {
  it('takes a user or user:group, by name or id, and is unset by default', () => {
    expect(loadEnv({}).SWITCHYARD_RUN_AS).toBeUndefined();
    for (const spec of ['node', 'node:node', 'nobody:nogroup', '1000', '1000:1000', '_svc-user']) expect(loadEnv({ SWITCHYARD_RUN_AS: spec }).SWITCHYARD_RUN_AS).toBe(spec);
  });
});

describe('loadEnv errors', () => {
  it('reports every invalid variable in one EnvError', () => {
    const error = envError({
      PORT: 'eighty',
      DATABASE_URL: 'mysql://root@localhost/switchyard',
      REDIS_URL: 'http://127.0.0.1:6379',
      LOG_LEVEL: 'loud',
      NODE_ENV: 'staging',
      SWITCHYARD_QUEUE_PREFIX: 'has spaces',
      SWITCHYARD_GRAPHIQL: 'maybe',
      SWITCHYARD_SHUTDOWN_TIMEOUT_MS: '-5',
      SWITCHYARD_RUN_AS: 'node; rm -rf /',
      HOST: '127.0.0.1', // valid: must not be reported
    });
    expect(error.name).toBe('EnvError');
    expect(problemVariables(error)).toEqual(
      [
        'DATABASE_URL',
        'LOG_LEVEL',
        'NODE_ENV',
        'PORT',
        'REDIS_URL',
        'SWITCHYARD_GRAPHIQL',
        'SWITCHYARD_QUEUE_PREFIX',
        'SWITCHYARD_RUN_AS',
        'SWITCHYARD_SHUTDOWN_TIMEOUT_MS',
      ].sort(),
    );
    // The message lists each problem on its own line.
    for (const problem of error.problems) expect(error.message).toContain(`  - ${problem}`);
    expect(error.message).toMatch(/^Invalid configuration:\n/);
    expect(error.problems.find((p) => p.startsWith('DATABASE_URL'))).toContain('postgresql://');
    expect(error.problems.find((p) => p.startsWith('REDIS_URL'))).toContain('redis://');
  });

  it('reads a secret from the file <NAME>_FILE names, refusing it together with <NAME> or when it cannot be read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-env-'));
    try {
      const file = (name: string, content: string) => {
        writeFileSync(join(dir, name), content);
        return join(dir, name);
      };
      const env = loadEnv({
        NODE_ENV: 'production',
        SWITCHYARD_SECRET_KEY_FILE: file('key', `${hexKey}\n`), // as `openssl rand -hex 32 > key` writes it
        DATABASE_URL_FILE: file('db', 'postgresql://app:s3cret@db:5432/switchyard'),
        VAULT_ADDR: 'http://vault:8200',
        VAULT_ROLE_ID: 'role',
        VAULT_SECRET_ID_FILE: file('secret-id', 'secret-id\r\n'),
      });
      expect(env).toMatchObject({ SWITCHYARD_SECRET_KEY: hexKey, DATABASE_URL: 'postgresql://app:s3cret@db:5432/switchyard', VAULT_SECRET_ID: 'secret-id' });

      const both = envError({ SWITCHYARD_SECRET_KEY: hexKey, SWITCHYARD_SECRET_KEY_FILE: file('key2', hexKey) });
      expect(both.problems).toEqual(['SWITCHYARD_SECRET_KEY_FILE cannot be combined with SWITCHYARD_SECRET_KEY: set one of them']);
      // Reported with the rest; the message names the file, never what is in it.
      const missing = envError({ NODE_ENV: 'production', SWITCHYARD_SECRET_KEY_FILE: join(dir, 'nope'), REDIS_URL_FILE: file('redis', 'http://not-redis') });
      expect(missing.problems).toEqual([
        `SWITCHYARD_SECRET_KEY_FILE could not be read (ENOENT): ${join(dir, 'nope')}`,
        'REDIS_URL must be a redis:// or rediss:// URL',
        expect.stringMatching(/^SWITCHYARD_SECRET_KEY is required when NODE_ENV=production/),
      ]);
      expect(missing.message).not.toContain('http://not-redis');
      // An empty file is a mistake, not "unset" (which would mean the local default database, or a new key).
      expect(envError({ DATABASE_URL_FILE: file('empty', '\n') }).problems).toEqual([`DATABASE_URL_FILE names an empty file: ${join(dir, 'empty')}`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('requires SWITCHYARD_SECRET_KEY when NODE_ENV=production', () => {
    const error = envError({ NODE_ENV: 'production' });
    expect(problemVariables(error)).toEqual(['SWITCHYARD_SECRET_KEY']);
    expect(error.problems[0]).toContain('NODE_ENV=production');
    expect(loadEnv({ NODE_ENV: 'production', SWITCHYARD_SECRET_KEY: hexKey }).NODE_ENV).toBe('production');
    // Outside production the key is optional (a key file is used instead).
    expect(loadEnv({ NODE_ENV: 'development' }).SWITCHYARD_SECRET_KEY).toBeUndefined();
    expect(loadEnv({ NODE_ENV: 'test' }).SWITCHYARD_SECRET_KEY).toBeUndefined();
  });

  it('reports the missing production key together with other invalid variables', () => {
    const error = envError({ NODE_ENV: 'production', PORT: 'abc', LOG_LEVEL: 'loud' });
    expect(problemVariables(error)).toEqual(['LOG_LEVEL', 'PORT', 'SWITCHYARD_SECRET_KEY']);
  });

  it('does not report the production key twice when it is given but invalid', () => {
    const error = envError({ NODE_ENV: 'production', SWITCHYARD_SECRET_KEY: 'abcd' });
    expect(problemVariables(error)).toEqual(['SWITCHYARD_SECRET_KEY']);
  });
});

describe('SWITCHYARD_SECRET_KEY', () => {
  it('accepts 32 bytes as 64 hex characters, in either case', () => {
    expect(loadEnv({ SWITCHYARD_SECRET_KEY: hexKey }).SWITCHYARD_SECRET_KEY).toBe(hexKey);
    expect(loadEnv({ SWITCHYARD_SECRET_KEY: hexKey.toUpperCase() }).SWITCHYARD_SECRET_KEY).toBe(hexKey.toUpperCase());
    expect(decodeSecretKey(hexKey)!.equals(Buffer.from(hexKey, 'hex'))).toBe(true);
  });

  it('accepts 32 bytes as base64, padded or base64url without padding', () => {
    expect(base64Key).toHaveLength(44);
    expect(loadEnv({ SWITCHYARD_SECRET_KEY: base64Key }).SWITCHYARD_SECRET_KEY).toBe(base64Key);
    expect(decodeSecretKey(base64Key)!.equals(Buffer.from(base64Key, 'base64'))).toBe(true);
    const url = Buffer.from(base64Key, 'base64').toString('base64url');
    expect(url).toHaveLength(43);
    expect(loadEnv({ SWITCHYARD_SECRET_KEY: url }).SWITCHYARD_SECRET_KEY).toBe(url);
    expect(decodeSecretKey(url)!.equals(Buffer.from(base64Key, 'base64'))).toBe(true);
  });

  it.each([
    ['16 bytes of hex', randomBytes(16).toString('hex')],
    ['31 bytes of hex', randomBytes(31).toString('hex')],
    ['33 bytes of hex', randomBytes(33).toString('hex')],
    ['16 bytes of base64', randomBytes(16).toString('base64')],
    ['31 bytes of base64', randomBytes(31).toString('base64')],
    ['48 bytes of base64', randomBytes(48).toString('base64')],
    ['64 non-hex characters', 'z'.repeat(64)],
    ['a passphrase', 'correct horse battery staple'],
  ])('rejects %s', (_label, key) => {
    expect(decodeSecretKey(key)).toBeNull();
    const error = envError({ SWITCHYARD_SECRET_KEY: key });
    expect(problemVariables(error)).toEqual(['SWITCHYARD_SECRET_KEY']);
    // The problem names the variable, never the value.
    expect(error.message).not.toContain(key);
  });
});

describe('empty strings', () => {
  it('count as unset, so defaults apply', () => {
    const env = loadEnv({
      PORT: '',
      HOST: '',
      DATABASE_URL: '',
      REDIS_URL: '',
      LOG_LEVEL: '',
      NODE_ENV: '',
      SWITCHYARD_SECRET_KEY: '',
      SWITCHYARD_QUEUE_PREFIX: '',
      SWITCHYARD_GRAPHIQL: '',
      SWITCHYARD_SHUTDOWN_TIMEOUT_MS: '',
    });
    expect(env).toEqual(loadEnv({}));
  });

  it('an empty SWITCHYARD_SECRET_KEY in production is a missing key', () => {
    expect(problemVariables(envError({ NODE_ENV: 'production', SWITCHYARD_SECRET_KEY: '' }))).toEqual(['SWITCHYARD_SECRET_KEY']);
  });

  it('undefined values count as unset too', () => {
    expect(loadEnv({ PORT: undefined, REDIS_URL: undefined })).toEqual(loadEnv({}));
  });
});
