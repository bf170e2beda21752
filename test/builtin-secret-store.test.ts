// The built-in secret store against a real, migrated Postgres schema of its own: AES-256-GCM with a fresh
// nonce per write, the secret's name bound as AAD, key-id checks, and single-use expiring IPC grants.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { createPrisma, type PrismaClient } from '../src/db/prisma.js';
import { loadEnv } from '../src/env.js';
import { BuiltinSecretStore, SecretKeyMismatchError, UnreadableSecretError } from '../src/secrets/builtin-store.js';
import { resolveSecretKey } from '../src/secrets/local-key.js';
import { dropSchema, testDatabaseUrl } from './support/harness.js';

const schema = `t_secret_store_${randomBytes(4).toString('hex')}`;
let prisma: PrismaClient;
let key: Buffer;
let store: BuiltinSecretStore;

beforeAll(async () => {
  await migrate(`${testDatabaseUrl}?schema=${schema}`);
  prisma = createPrisma(`${testDatabaseUrl}?schema=${schema}`, { poolSize: 3 });
  key = randomBytes(32);
  store = new BuiltinSecretStore(prisma, key);
});
afterAll(async () => {
  await prisma?.$disconnect();
  await dropSchema(schema);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const value = (label: string) => ({ instanceUrl: 'https://acme.my.salesforce.com', refreshToken: `${label}-${randomBytes(16).toString('hex')}` });

describe('put / get / delete', () => {
  it('round-trips a value and removes it', async () => {
    const secret = { ...value('rt'), clientId: 'PlatformCLI', clientSecret: 'ü-ñ-✓ unicode survives' };
    await store.put('orgs/round-trip', secret);
    expect(await store.get('orgs/round-trip')).toEqual(secret);

    await store.delete('orgs/round-trip');
    expect(await store.get('orgs/round-trip')).toBeNull();
    expect(await prisma.secret.findUnique({ where: { name: 'orgs/round-trip' } })).toBeNull();
    await expect(store.delete('orgs/round-trip')).resolves.toBeUndefined();
  });

  it('answers null for a secret that was never written', async () => {
    expect(await store.get('orgs/never-written')).toBeNull();
  });

  it('replaces a value in place, bumping its version', async () => {
    const first = value('first');
    const second = value('second');
    await store.put('orgs/replaced', first);
    await store.put('orgs/replaced', second);
    expect(await store.get('orgs/replaced')).toEqual(second);
    const rows = await prisma.secret.findMany({ where: { name: 'orgs/replaced' } });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.version).toBe(2);
  });

  it('keeps secrets apart by name', async () => {
    const a = value('a');
    const b = value('b');
    await store.put('orgs/apart-a', a);
    await store.put('orgs/apart-b', b);
    expect(await store.get('orgs/apart-a')).toEqual(a);
    expect(await store.get('orgs/apart-b')).toEqual(b);
    await store.delete('orgs/apart-a');
    expect(await store.get('orgs/apart-b')).toEqual(b);
  });
});

describe('what is stored', () => {
  it('is ciphertext with a 12-byte nonce and 16-byte tag, never the plaintext or the key', async () => {
    const secret = value('stored');
    await store.put('orgs/stored', secret);
    const row = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/stored' } });
    expect(row.nonce).toHaveLength(12);
    expect(row.authTag).toHaveLength(16);
    const ciphertext = Buffer.from(row.ciphertext);
    expect(ciphertext.length).toBe(Buffer.byteLength(JSON.stringify(secret)));
    expect(ciphertext.includes(Buffer.from(secret.refreshToken))).toBe(false);
    expect(ciphertext.toString('utf8')).not.toContain('refreshToken');
    expect(JSON.stringify(row)).not.toContain(secret.refreshToken);
    expect(row.keyId).not.toContain(key.toString('hex').slice(0, 8));
    expect(row.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('uses a fresh nonce for every write of the same value', async () => {
    const secret = value('same');
    await store.put('orgs/nonce', secret);
    const first = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/nonce' } });
    await store.put('orgs/nonce', secret);
    const second = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/nonce' } });
    expect(Buffer.from(second.nonce).equals(Buffer.from(first.nonce))).toBe(false);
    expect(Buffer.from(second.ciphertext).equals(Buffer.from(first.ciphertext))).toBe(false);
    expect(Buffer.from(second.authTag).equals(Buffer.from(first.authTag))).toBe(false);
    expect(await store.get('orgs/nonce')).toEqual(secret);

    // The same value under another name differs as well.
    await store.put('orgs/nonce-twin', secret);
    const twin = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/nonce-twin' } });
    expect(Buffer.from(twin.ciphertext).equals(Buffer.from(second.ciphertext))).toBe(false);
  });
});

describe('integrity', () => {
  it('refuses to open a ciphertext copied onto another secret name (AAD binding)', async () => {
    const victim = value('victim');
    await store.put('orgs/victim', victim);
    await store.put('orgs/attacker', value('attacker'));
    const source = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/victim' } });
    await prisma.secret.update({
      where: { name: 'orgs/attacker' },
      data: { ciphertext: source.ciphertext, nonce: source.nonce, authTag: source.authTag, keyId: source.keyId },
    });
    await expect(store.get('orgs/attacker')).rejects.toBeInstanceOf(UnreadableSecretError);
    // The original is untouched and still opens.
    expect(await store.get('orgs/victim')).toEqual(victim);
  });

  it('refuses a tampered ciphertext or tag', async () => {
    await store.put('orgs/tampered', value('tampered'));
    const row = await prisma.secret.findUniqueOrThrow({ where: { name: 'orgs/tampered' } });
    const flipped = Buffer.from(row.ciphertext);
    flipped[0] = flipped[0]! ^ 0x01;
    await prisma.secret.update({ where: { name: 'orgs/tampered' }, data: { ciphertext: flipped } });
    await expect(store.get('orgs/tampered')).rejects.toBeInstanceOf(UnreadableSecretError);

    const tag = Buffer.from(row.authTag);
    tag[15] = tag[15]! ^ 0x80;
    await prisma.secret.update({ where: { name: 'orgs/tampered' }, data: { ciphertext: row.ciphertext, authTag: tag } });
    await expect(store.get('orgs/tampered')).rejects.toBeInstanceOf(UnreadableSecretError);
  });

  it('reports a different key as SecretKeyMismatchError, naming the secret but not the key', async () => {
    await store.put('orgs/keyed', value('keyed'));
    const otherKey = randomBytes(32);
    const other = new BuiltinSecretStore(prisma, otherKey);
    const error = await other.get('orgs/keyed').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SecretKeyMismatchError);
    expect((error as Error).message).toContain('orgs/keyed');
    expect((error as Error).message).not.toContain(otherKey.toString('hex'));
    expect((error as Error).message).not.toContain(key.toString('hex'));

    // A second store with the same key reads it.
    expect(await new BuiltinSecretStore(prisma, Buffer.from(key)).get('orgs/keyed')).not.toBeNull();
  });

  it('requires a 32-byte key', () => {
    expect(() => new BuiltinSecretStore(prisma, randomBytes(16))).toThrow(/32-byte/);
    expect(() => new BuiltinSecretStore(prisma, randomBytes(33))).toThrow(/32-byte/);
  });
});

describe('grants', () => {
  it('redeems a grant for the value exactly once', async () => {
    const secret = value('granted');
    await store.put('orgs/granted', secret);
    const issuedAt = Date.now();
    const grant = await store.issueGrant('orgs/granted', 30);
    expect(grant.kind).toBe('ipc');
    expect(grant.token).not.toContain('orgs/granted');
    expect(grant.token.length).toBeGreaterThanOrEqual(32);
    const expiresAt = Date.parse(grant.expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(issuedAt + 29_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 30_000);

    expect(await store.redeem(grant.token)).toEqual(secret);
    expect(await store.redeem(grant.token)).toBeNull();
  });

  it('gives every grant its own token', async () => {
    await store.put('orgs/twice', value('twice'));
    const a = await store.issueGrant('orgs/twice', 30);
    const b = await store.issueGrant('orgs/twice', 30);
    expect(a.token).not.toBe(b.token);
    expect(await store.redeem(b.token)).not.toBeNull();
    expect(await store.redeem(a.token)).not.toBeNull();
  });

  it('returns null for an expired grant, and the grant stays dead', async () => {
    await store.put('orgs/expiring', value('expiring'));
    const grant = await store.issueGrant('orgs/expiring', 0.05);
    await sleep(120);
    expect(await store.redeem(grant.token)).toBeNull();
    expect(await store.redeem(grant.token)).toBeNull();
  });

  it('returns null for an unknown token', async () => {
    expect(await store.redeem(randomBytes(32).toString('base64url'))).toBeNull();
    expect(await store.redeem('')).toBeNull();
  });

  it('is redeemable only at the store instance that issued it', async () => {
    await store.put('orgs/local', value('local'));
    const grant = await store.issueGrant('orgs/local', 30);
    const sibling = new BuiltinSecretStore(prisma, key);
    expect(await sibling.redeem(grant.token)).toBeNull();
    expect(await store.redeem(grant.token)).not.toBeNull();
  });

  it('returns null when the secret was deleted after the grant was issued', async () => {
    await store.put('orgs/deleted', value('deleted'));
    const grant = await store.issueGrant('orgs/deleted', 30);
    await store.delete('orgs/deleted');
    expect(await store.redeem(grant.token)).toBeNull();
  });
});

describe('development key file (SWITCHYARD_SECRET_KEY unset)', () => {
  const silent = pino({ level: 'silent' });
  const envWith = (file: string) => loadEnv({ SWITCHYARD_KEY_FILE: file });

  it('starts racing to create the key (API and workers on a fresh checkout) all get the one key that is saved, readable only by its owner', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'switchyard-key-'));
    try {
      const file = path.join(dir, 'nested', 'secret-key');
      const keys = await Promise.all(Array.from({ length: 8 }, () => resolveSecretKey(envWith(file), silent)));
      const saved = (await readFile(file, 'utf8')).trim();
      expect(saved).toMatch(/^[0-9a-f]{64}$/);
      expect(new Set(keys.map((one) => one.toString('hex')))).toEqual(new Set([saved]));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readdir(path.dirname(file))).toEqual(['secret-key']); // nothing half-written left beside it
      // A later start reads it.
      expect((await resolveSecretKey(envWith(file), silent)).toString('hex')).toBe(saved);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a key file that does not hold a key, rather than replacing it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'switchyard-key-'));
    try {
      const file = path.join(dir, 'secret-key');
      await writeFile(file, 'not a key\n');
      await expect(resolveSecretKey(envWith(file), silent)).rejects.toThrow(`${file} does not hold a 32-byte key (64 hex characters)`);
      expect(await readFile(file, 'utf8')).toBe('not a key\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
