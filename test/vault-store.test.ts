// The Vault secret store against a Vault-compatible fixture server (test/fixtures/vault-server.ts): KV v2
// storage, token and AppRole auth, response-wrapped grants redeemed by unwrapVaultGrant, error hygiene,
// backend selection and the Vault environment variables. No Postgres or Redis needed.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/db/prisma.js';
import { EnvError, loadEnv } from '../src/env.js';
import { BuiltinSecretStore } from '../src/secrets/builtin-store.js';
import { createSecretStore } from '../src/secrets/create-secret-store.js';
import type { CredentialGrant, SecretValue } from '../src/secrets/secret-store.js';
import { VaultRequestError, VaultSecretStore } from '../src/secrets/vault-store.js';
import { deferredDependencies, nodeVaultBundle, unwrapVaultGrant } from '../src/secrets/vault-unwrap.js';
import { startVaultServer, type VaultServer } from './fixtures/vault-server.js';
import { runProbe } from './support/probe.js';

const rootToken = `hvs.root-${randomBytes(12).toString('hex')}`;
const roleId = `role-${randomBytes(8).toString('hex')}`;
const secretId = `secret-id-${randomBytes(12).toString('hex')}`;

function credentials(): SecretValue {
  return {
    instanceUrl: 'https://example.my.salesforce.com',
    refreshToken: `5Aep861-${randomBytes(16).toString('hex')}`,
    clientSecret: `cs-${randomBytes(16).toString('hex')}`,
  };
}

/** The secret parts of a value (the instance URL is not secret). */
const secretParts = (value: SecretValue) => [value.refreshToken!, value.clientSecret!];

async function rejection(promise: Promise<unknown>): Promise<VaultRequestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(VaultRequestError);
    return error as VaultRequestError;
  }
  throw new Error('expected the call to fail');
}

/** Everything an error would show when logged: message, stack and own properties. */
const shown = (error: unknown) => `${String(error)}\n${inspect(error, { depth: 10, showHidden: true })}\n${JSON.stringify(error)}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function expectGrant(grant: CredentialGrant): asserts grant is Extract<CredentialGrant, { kind: 'vault' }> {
  expect(grant.kind).toBe('vault');
}

const unwrapProbe = fileURLToPath(new URL('./support/vault-unwrap-probe.mjs', import.meta.url));
const everyDeferred = (state: unknown) => Object.fromEntries(deferredDependencies.map((d) => [d.request, state]));

describe('VaultSecretStore with a static token', () => {
  let vault: VaultServer;
  let store: VaultSecretStore;

  beforeAll(async () => {
    vault = await startVaultServer({ token: rootToken, kvMounts: ['secret', 'team-kv'] });
    store = new VaultSecretStore({ address: vault.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard' });
  });
  afterAll(() => vault.close());

  it('writes the secret under <mount>/data/<prefix>/<name> and reads it back', async () => {
    const value = credentials();
    await store.put('orgs/1', value);
    expect(vault.kvData('secret', 'switchyard/orgs/1')).toEqual(value);
    expect(vault.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v1/secret/data/switchyard/orgs/1', status: 200 });
    expect(await store.get('orgs/1')).toEqual(value);
    expect(vault.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/secret/data/switchyard/orgs/1', status: 200 });
  });

  it('replaces a secret with a new version and deletes every version', async () => {
    const first = credentials();
    const second = credentials();
    await store.put('orgs/2', first);
    await store.put('orgs/2', second);
    expect(vault.kvVersions('secret', 'switchyard/orgs/2')).toEqual([1, 2]);
    expect(await store.get('orgs/2')).toEqual(second);

    await store.delete('orgs/2');
    expect(vault.requests.at(-1)).toMatchObject({ method: 'DELETE', path: '/v1/secret/metadata/switchyard/orgs/2', status: 204 });
    expect(vault.kvPaths('secret')).not.toContain('switchyard/orgs/2');
    expect(vault.kvVersions('secret', 'switchyard/orgs/2')).toEqual([]);
    expect(await store.get('orgs/2')).toBeNull();
    await expect(store.delete('orgs/2')).resolves.toBeUndefined();
  });

  it('returns null for a secret that does not exist (Vault answers 404 {"errors":[]})', async () => {
    expect(await store.get('orgs/missing')).toBeNull();
    expect(vault.requests.at(-1)).toMatchObject({ status: 404, responseBody: '{"errors":[]}' });
  });

  it('uses the configured mount and path prefix', async () => {
    const other = new VaultSecretStore({ address: `${vault.address}/`, token: rootToken, mount: 'team-kv', pathPrefix: '/apps/switchyard/' });
    const value = credentials();
    await other.put('orgs/9', value);
    expect(vault.kvData('team-kv', 'apps/switchyard/orgs/9')).toEqual(value);
    expect(vault.kvPaths('secret').some((path) => path.endsWith('orgs/9'))).toBe(false);
    expect(await store.get('orgs/9')).toBeNull();
    expect(await other.get('orgs/9')).toEqual(value);
  });

  it('refuses names that would leave the prefix, without calling Vault', async () => {
    const before = vault.requests.length;
    for (const name of ['../escape', 'orgs/../../x', 'a//b', '', 'orgs/./x', 'with space']) {
      await expect(store.get(name)).rejects.toThrow(/Invalid secret name/);
      await expect(store.put(name, credentials())).rejects.toThrow(/Invalid secret name/);
    }
    expect(vault.requests.length).toBe(before);
  });

  it('verify() looks the token up', async () => {
    expect(await store.verify()).toEqual({ ttlSeconds: 0, renewable: false, policies: ['root'] });
    expect(vault.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/auth/token/lookup-self', status: 200 });
  });

  it('sends X-Vault-Namespace when a namespace is configured', async () => {
    const namespaced = new VaultSecretStore({ address: vault.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard', namespace: 'team-a' });
    await namespaced.get('orgs/1');
    expect(vault.requests.at(-1)!.namespace).toBe('team-a');
    await store.get('orgs/1');
    expect(vault.requests.at(-1)!.namespace).toBeUndefined();
  });
});

describe('VaultSecretStore with a static token that expires', () => {
  it('renews it from two thirds of its TTL, even with no request then, so it outlives that TTL', async () => {
    const token = `hvs.${randomBytes(12).toString('hex')}`;
    const vault = await startVaultServer({ token, tokenTtlSeconds: 3 });
    try {
      const store = new VaultSecretStore({ address: vault.address, token, mount: 'secret', pathPrefix: 'switchyard' });
      const value = credentials();
      await store.put('orgs/r', value);
      expect(vault.renewals).toBe(0);
      // Quiet past the token's first 3 s: the renewal at 2 s came from the store's own timer.
      await sleep(3600);
      expect(vault.renewals).toBeGreaterThanOrEqual(1);
      expect(await store.get('orgs/r')).toEqual(value);
      expect(vault.requests.filter((r) => r.path.startsWith('/v1/auth/token/')).map((r) => [r.path, r.status])).toEqual([
        ['/v1/auth/token/lookup-self', 200],
        ...Array(vault.renewals).fill(['/v1/auth/token/renew-self', 200]),
      ]);
    } finally {
      await vault.close();
    }
  });

  it('leaves a token without a TTL (root) alone: one lookup, no renewal', async () => {
    const vault = await startVaultServer({ token: rootToken });
    try {
      const store = new VaultSecretStore({ address: vault.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard' });
      for (let i = 0; i < 3; i += 1) await store.get('orgs/none');
      expect(vault.requests.map((r) => r.path)).toEqual(['/v1/auth/token/lookup-self', ...Array(3).fill('/v1/secret/data/switchyard/orgs/none')]);
    } finally {
      await vault.close();
    }
  });
});

describe('credential grants (response wrapping)', () => {
  let vault: VaultServer;
  let store: VaultSecretStore;
  const value = credentials();

  beforeAll(async () => {
    vault = await startVaultServer({ token: rootToken });
    store = new VaultSecretStore({ address: vault.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard' });
    await store.put('orgs/g', value);
  });
  afterAll(() => vault.close());

  it('issues a wrapping token, never the value, and the store never sees the plaintext', async () => {
    const before = vault.requests.length;
    const issuedAt = Date.now();
    const grant = await store.issueGrant('orgs/g', 300);
    expectGrant(grant);
    expect(grant.address).toBe(vault.address);
    expect(grant.token).toMatch(/^hvs\./);
    for (const part of secretParts(value)) expect(JSON.stringify(grant)).not.toContain(part);
    // The TTL is capped at 60 s.
    const expiresAt = Date.parse(grant.expiresAt);
    expect(expiresAt).toBeGreaterThan(issuedAt + 55_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);

    // Exactly one request: the wrapped read. What Vault sent back held wrap_info, not the data.
    const during = vault.requests.slice(before);
    expect(during).toHaveLength(1);
    expect(during[0]).toMatchObject({ method: 'GET', path: '/v1/secret/data/switchyard/orgs/g', wrapTtl: '60s', status: 200 });
    const body = JSON.parse(during[0]!.responseBody);
    expect(body.data).toBeNull();
    expect(body.wrap_info).toMatchObject({ token: grant.token, ttl: 60, creation_path: 'secret/data/switchyard/orgs/g' });
    for (const part of secretParts(value)) expect(during[0]!.responseBody).not.toContain(part);
  });

  it('asks for the requested TTL when it is under 60 s', async () => {
    const grant = await store.issueGrant('orgs/g', 5);
    expect(vault.requests.at(-1)!.wrapTtl).toBe('5s');
    expect(Date.parse(grant.expiresAt)).toBeLessThanOrEqual(Date.now() + 5_000);
  });

  it('unwrapVaultGrant returns the value once; a second unwrap fails', async () => {
    const grant = await store.issueGrant('orgs/g', 30);
    expectGrant(grant);
    expect(await unwrapVaultGrant(grant)).toEqual(value);
    // The wrapping token went in X-Vault-Token, not (also) in the body.
    expect(vault.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v1/sys/wrapping/unwrap', status: 200, hadToken: true, bodyHadToken: false });

    const error = await rejection(unwrapVaultGrant(grant));
    expect(error.status).toBe(400);
    expect(error.message).toContain('wrapping token is not valid or does not exist');
    expect(error.message).toContain('already used');
    expect(shown(error)).not.toContain(grant.token);
  });

  // node-vault from its prebuilt bundle (module-bundles/module-bundle.ts; the test command builds it) with its
  // code cache, and from node_modules, as a child without a current bundle loads it.
  it.each([
    ['bundle', { from: 'bundle', codeCache: 'accepted' }],
    ['packages', { from: 'packages', reason: 'skipped' }],
  ] as const)('a fresh process redeems a grant without loading the packages axios only needs for multipart and proxies, nor the Fetch API (node-vault from %s)', async (source, nodeVaultFrom) => {
    const grant = await store.issueGrant('orgs/g', 30);
    expectGrant(grant);
    const answer = await runProbe<{ value: SecretValue; states: Record<string, string>; nodeVault: unknown; undici: unknown; fetchApiAsBefore: boolean; request: string }>(
      unwrapProbe,
      { job: 'unwrap', grant, source },
    );
    expect(answer.error).toBeUndefined();
    expect(answer.value).toEqual(value);
    expect(vault.requests.at(-1)).toMatchObject({ method: 'POST', path: '/v1/sys/wrapping/unwrap', status: 200 });
    expect(answer.states).toEqual(everyDeferred('deferred'));
    expect(answer.nodeVault).toEqual(nodeVaultFrom);
    // axios loaded with the Fetch API's globals hidden (vault-unwrap.ts), so Node's undici stayed unloaded, and
    // the globals are Node's own again afterwards, and work.
    expect(answer.undici).toBe(false);
    expect(answer.fetchApiAsBefore).toBe(true);
    expect(answer.request).toBe('string');
  });

  it('an expired grant cannot be unwrapped', async () => {
    const grant = await store.issueGrant('orgs/g', 1);
    expectGrant(grant);
    expect(vault.requests.at(-1)!.wrapTtl).toBe('1s');
    await sleep(1_100);
    const error = await rejection(unwrapVaultGrant(grant));
    expect(error.status).toBe(400);
    expect(error.message).toContain('wrapping token is not valid or does not exist');
  });

  it('a wrapping token is not a client token', async () => {
    const grant = await store.issueGrant('orgs/g', 10);
    expectGrant(grant);
    const impostor = new VaultSecretStore({ address: vault.address, token: grant.token, mount: 'secret', pathPrefix: 'switchyard' });
    expect((await rejection(impostor.get('orgs/g'))).status).toBe(403);
    // Still redeemable by its owner afterwards.
    expect(await unwrapVaultGrant(grant)).toEqual(value);
  });

  it('refuses to issue a grant for a secret that does not exist', async () => {
    const error = await rejection(store.issueGrant('orgs/none', 30));
    expect(error.status).toBe(404);
    expect(error.message).toContain('does not exist');
  });

  it('rejects a grant without a token instead of falling back to VAULT_TOKEN', async () => {
    const saved = process.env.VAULT_TOKEN;
    process.env.VAULT_TOKEN = rootToken;
    try {
      await expect(unwrapVaultGrant({ address: vault.address, token: '' })).rejects.toThrow(/no wrapping token/);
    } finally {
      if (saved === undefined) delete process.env.VAULT_TOKEN;
      else process.env.VAULT_TOKEN = saved;
    }
  });
});

describe('errors never carry tokens or secret values', () => {
  let vault: VaultServer;

  beforeAll(async () => {
    vault = await startVaultServer({ token: rootToken });
  });
  afterAll(() => vault.close());

  it('a wrong token gives a clear permission error', async () => {
    const wrongToken = `hvs.WRONG-${randomBytes(12).toString('hex')}`;
    const store = new VaultSecretStore({ address: vault.address, token: wrongToken, mount: 'secret', pathPrefix: 'switchyard' });
    const value = credentials();
    const error = await rejection(store.put('orgs/1', value));
    expect(error.status).toBe(403);
    expect(error.message).toContain('permission denied');
    expect(error.message).toContain('writing secret orgs/1');
    expect(error.message).toContain(vault.address);
    const text = shown(error);
    for (const hidden of [wrongToken, rootToken, ...secretParts(value)]) expect(text).not.toContain(hidden);
    expect(vault.kvPaths('secret')).toEqual([]);

    const readError = await rejection(store.get('orgs/1'));
    expect(readError.status).toBe(403);
    expect(shown(readError)).not.toContain(wrongToken);
    expect(shown(await rejection(store.issueGrant('orgs/1', 30)))).not.toContain(wrongToken);
  });

  it('an unreachable Vault gives a clear error', async () => {
    const gone = await startVaultServer({ token: rootToken });
    await gone.close();
    const store = new VaultSecretStore({ address: gone.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard' });
    const value = credentials();
    const error = await rejection(store.put('orgs/1', value));
    expect(error.status).toBeUndefined();
    expect(error.message).toMatch(/unreachable \(ECONNREFUSED\)/);
    const text = shown(error);
    for (const hidden of [rootToken, ...secretParts(value)]) expect(text).not.toContain(hidden);
  });

  it('the store object does not expose its credentials', () => {
    const store = new VaultSecretStore({ address: vault.address, roleId, secretId, mount: 'secret', pathPrefix: 'switchyard' });
    const text = `${inspect(store, { depth: 10, showHidden: true })}${JSON.stringify(store)}`;
    expect(text).not.toContain(secretId);
    const tokenStore = new VaultSecretStore({ address: vault.address, token: rootToken, mount: 'secret', pathPrefix: 'switchyard' });
    expect(`${inspect(tokenStore, { depth: 10, showHidden: true })}${JSON.stringify(tokenStore)}`).not.toContain(rootToken);
  });
});

describe('VaultSecretStore with AppRole', () => {
  let vault: VaultServer;
  let store: VaultSecretStore;
  const value = credentials();

  beforeAll(async () => {
    vault = await startVaultServer({ approle: { roleId, secretId, tokenTtlSeconds: 2 } });
    store = new VaultSecretStore({ address: vault.address, roleId, secretId, mount: 'secret', pathPrefix: 'switchyard' });
  });
  afterAll(() => vault.close());

  it('logs in lazily, once, and stores under the prefix', async () => {
    expect(vault.approleLogins).toBe(0);
    expect(store.authMethod).toBe('approle');
    await Promise.all([store.put('orgs/a', value), store.get('orgs/none')]);
    expect(vault.approleLogins).toBe(1);
    expect(vault.kvData('secret', 'switchyard/orgs/a')).toEqual(value);
    expect(await store.get('orgs/a')).toEqual(value);
    expect(vault.approleLogins).toBe(1);
    expect(vault.requests.find((r) => r.path === '/v1/auth/approle/login')).toMatchObject({ method: 'POST', hadToken: false });
  });

  it('logs in again when Vault answers 403 (token revoked)', async () => {
    for (const token of vault.liveTokens()) vault.revokeToken(token);
    expect(await store.get('orgs/a')).toEqual(value);
    expect(vault.approleLogins).toBe(2);
    expect(vault.requests.slice(-4).map((r) => [r.path, r.status])).toEqual([
      ['/v1/secret/data/switchyard/orgs/a', 403],
      ['/v1/auth/token/lookup-self', 403], // the token is gone, not merely not allowed there
      ['/v1/auth/approle/login', 200],
      ['/v1/secret/data/switchyard/orgs/a', 200],
    ]);
  });

  it('logs in again before the token lease ends, without a failed request', async () => {
    await sleep(1_700); // the 2 s lease is renewed from 80 % of its life
    const before = vault.requests.length;
    expect(await store.get('orgs/a')).toEqual(value);
    expect(vault.approleLogins).toBe(3);
    expect(vault.requests.slice(before).map((r) => [r.path, r.status])).toEqual([
      ['/v1/auth/approle/login', 200],
      ['/v1/secret/data/switchyard/orgs/a', 200],
    ]);
  });

  it('issues grants that unwrap to the value', async () => {
    const grant = await store.issueGrant('orgs/a', 20);
    expectGrant(grant);
    expect(await unwrapVaultGrant(grant)).toEqual(value);
  });

  it('a wrong secret id gives a clear error without the credentials', async () => {
    const wrongSecretId = `wrong-${randomBytes(12).toString('hex')}`;
    const bad = new VaultSecretStore({ address: vault.address, roleId, secretId: wrongSecretId, mount: 'secret', pathPrefix: 'switchyard' });
    const error = await rejection(bad.put('orgs/b', value));
    expect(error.status).toBe(400);
    expect(error.message).toContain('AppRole login failed');
    expect(error.message).toContain('invalid role or secret ID');
    const text = shown(error);
    for (const hidden of [wrongSecretId, roleId, ...secretParts(value)]) expect(text).not.toContain(hidden);
    expect(vault.kvData('secret', 'switchyard/orgs/b')).toBeUndefined();
  });

  it("does not log in again for a 403 that is the policy's answer to a token Vault still knows", async () => {
    vault.denyPath('/v1/secret/data/switchyard/denied/');
    expect(await store.get('orgs/a')).toEqual(value); // a session to start from
    const logins = vault.approleLogins;
    for (let i = 0; i < 3; i += 1) expect((await rejection(store.issueGrant('denied/x', 20))).status).toBe(403);
    // Each AppRole login would spend one of the secret id's uses (secret_id_num_uses), for nothing.
    expect(vault.approleLogins).toBe(logins);
    expect(await store.get('orgs/a')).toEqual(value);
  });

  it('refuses incomplete or ambiguous credentials', () => {
    const base = { address: vault.address, mount: 'secret', pathPrefix: 'switchyard' };
    expect(() => new VaultSecretStore({ ...base, roleId })).toThrow(/role id and secret id/);
    expect(() => new VaultSecretStore({ ...base })).toThrow(/needs a token/);
    expect(() => new VaultSecretStore({ ...base, token: rootToken, roleId, secretId })).toThrow(/not both/);
    expect(() => new VaultSecretStore({ ...base, token: rootToken, address: 'vault:8200' })).toThrow(/http/);
  });
});

describe('createSecretStore', () => {
  let vault: VaultServer;
  const prisma = {} as PrismaClient; // the built-in store only keeps it; nothing here touches the database
  const key = randomBytes(32);

  beforeAll(async () => {
    vault = await startVaultServer({ token: rootToken, approle: { roleId, secretId } });
  });
  afterAll(() => vault.close());

  it('uses the built-in store without VAULT_ADDR', () => {
    const store = createSecretStore(loadEnv({ VAULT_TOKEN: rootToken }), prisma, key);
    expect(store).toBeInstanceOf(BuiltinSecretStore);
    expect(store.kind).toBe('builtin');
  });

  it('uses Vault with VAULT_ADDR and a token, honouring mount and prefix', async () => {
    const env = loadEnv({ VAULT_ADDR: vault.address, VAULT_TOKEN: rootToken, VAULT_PATH_PREFIX: 'from-env' });
    const store = createSecretStore(env, prisma, key);
    expect(store).toBeInstanceOf(VaultSecretStore);
    expect(store.kind).toBe('vault');
    const value = credentials();
    await store.put('orgs/e', value);
    expect(vault.kvData('secret', 'from-env/orgs/e')).toEqual(value);
    expect(await store.get('orgs/e')).toEqual(value);
  });

  it('uses Vault with AppRole and a namespace', async () => {
    const env = loadEnv({ VAULT_ADDR: vault.address, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId, VAULT_NAMESPACE: 'ops' });
    const store = createSecretStore(env, prisma, key) as VaultSecretStore;
    expect(store.authMethod).toBe('approle');
    expect(await store.get('orgs/none')).toBeNull();
    expect(vault.requests.at(-1)!.namespace).toBe('ops');
    expect(vault.approleLogins).toBe(1);
  });
});

describe('Vault environment variables', () => {
  function problems(source: Record<string, string>): string[] {
    try {
      loadEnv(source);
    } catch (error) {
      expect(error).toBeInstanceOf(EnvError);
      return (error as EnvError).problems;
    }
    throw new Error(`loadEnv accepted ${JSON.stringify(source)}`);
  }
  const variables = (source: Record<string, string>) => problems(source).map((p) => p.split(' ')[0]).sort();
  const addr = 'https://vault.internal:8200';

  it('defaults the mount and prefix and leaves Vault off', () => {
    const env = loadEnv({});
    expect(env.VAULT_ADDR).toBeUndefined();
    expect(env.VAULT_KV_MOUNT).toBe('secret');
    expect(env.VAULT_PATH_PREFIX).toBe('switchyard');
    expect(loadEnv({ VAULT_KV_MOUNT: 'kv/teams', VAULT_PATH_PREFIX: 'sy/prod' })).toMatchObject({ VAULT_KV_MOUNT: 'kv/teams', VAULT_PATH_PREFIX: 'sy/prod' });
  });

  it('accepts a token or a complete AppRole', () => {
    expect(loadEnv({ VAULT_ADDR: addr, VAULT_TOKEN: 't' }).VAULT_ADDR).toBe(addr);
    expect(loadEnv({ VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_NAMESPACE: 'ns' })).toMatchObject({
      VAULT_ROLE_ID: 'r',
      VAULT_SECRET_ID: 's',
      VAULT_NAMESPACE: 'ns',
    });
  });

  it('requires credentials once VAULT_ADDR is set, naming the missing variable', () => {
    const [problem] = problems({ VAULT_ADDR: addr });
    expect(problem).toMatch(/^VAULT_TOKEN is required when VAULT_ADDR is set/);
    expect(problem).toContain('VAULT_ROLE_ID');
    expect(variables({ VAULT_ADDR: addr, VAULT_ROLE_ID: 'r' })).toEqual(['VAULT_SECRET_ID']);
    expect(variables({ VAULT_ADDR: addr, VAULT_SECRET_ID: 's' })).toEqual(['VAULT_ROLE_ID']);
    expect(variables({ VAULT_ADDR: addr, VAULT_TOKEN: 't', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' })).toEqual(['VAULT_TOKEN']);
  });

  it('rejects a VAULT_ADDR that is not an http(s) URL and bad paths', () => {
    expect(variables({ VAULT_ADDR: 'vault.internal:8200', VAULT_TOKEN: 't' })).toEqual(['VAULT_ADDR']);
    expect(variables({ VAULT_ADDR: 'ftp://vault.internal', VAULT_TOKEN: 't' })).toEqual(['VAULT_ADDR']);
    expect(variables({ VAULT_KV_MOUNT: '../sys' })).toEqual(['VAULT_KV_MOUNT']);
    expect(variables({ VAULT_PATH_PREFIX: 'a b' })).toEqual(['VAULT_PATH_PREFIX']);
  });

  it('reports Vault problems together with every other invalid variable, without secret values', () => {
    const leaked = `sid-${randomBytes(8).toString('hex')}`;
    expect(variables({ VAULT_ADDR: 'not a url', PORT: 'eighty', VAULT_SECRET_ID: leaked, VAULT_KV_MOUNT: '' })).toEqual(
      ['PORT', 'VAULT_ADDR', 'VAULT_ROLE_ID'].sort(),
    );
    expect(problems({ VAULT_ADDR: addr, VAULT_SECRET_ID: leaked }).join('\n')).not.toContain(leaked);
  });

  it('ignores Vault credentials without VAULT_ADDR', () => {
    expect(loadEnv({ VAULT_ROLE_ID: 'r' }).VAULT_ROLE_ID).toBe('r');
  });
});

describe('the child-process module', () => {
  it("loads node-vault with axios's multipart and proxy packages as stand-ins that still work when used", async () => {
    const answer = await runProbe<{ uses: Record<string, unknown>; before: Record<string, string>; after: Record<string, string> }>(unwrapProbe, {
      job: 'use-each',
    });
    expect(answer.error).toBeUndefined();
    expect(answer.before).toEqual(everyDeferred('deferred'));
    expect(answer.uses).toEqual({
      formBody: expect.stringMatching(/Content-Disposition: form-data; name="entity"\r\n\r\nx\r\n/),
      formIsFormData: true,
      // The tunnel reached the proxy, which refused it.
      proxyRequests: ['CONNECT vault.example.invalid:8200 HTTP/1.1'],
      proxiedOutcome: 'ERR_BAD_RESPONSE',
    });
    expect(answer.after).toEqual(everyDeferred('loaded'));
  });

  it('defers no package that is an ES module compiled to CommonJS (the stand-ins answer __esModule without loading)', async () => {
    const answer = await runProbe<{ flags: Record<string, boolean>; states: Record<string, string> }>(unwrapProbe, { job: 'es-module-flags' });
    expect(answer.states).toEqual(everyDeferred('loaded')); // the real packages, nothing deferred in this process
    expect(answer.flags).toEqual(everyDeferred(false));
  });

  it('vault-unwrap.ts loads node-vault and imports nothing but what loads it and Node built-ins', () => {
    // Its imports, and theirs, that survive compilation (type-only ones are erased).
    const allowed = ['secrets/vault-unwrap.ts', 'module-bundles/module-bundle.ts', 'module-bundles/commonjs-runner.ts', 'module-bundles/lazy-data-module.ts', 'module-bundles/lazy-data.ts', 'deferred-modules.ts', 'lazy-module.ts'];
    const src = new URL('../src/', import.meta.url);
    for (const file of allowed) {
      const source = readFileSync(new URL(file, src), 'utf8');
      const specifiers = [
        ...source.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gm),
        ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
        ...source.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g),
      ].map((match) => match[1]!);
      for (const specifier of specifiers) {
        if (specifier.startsWith('node:')) continue;
        expect(allowed, `${file} imports ${specifier}`).toContain(new URL(specifier.replace(/\.js$/, '.ts'), new URL(file, src)).href.slice(src.href.length));
      }
    }
    expect(nodeVaultBundle.entries).toEqual({ client: 'node-vault' });
  });
});
