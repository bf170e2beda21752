// Orgs through GraphQL with an OWNER token: registration in both credential forms, queries and pagination,
// validation (and that nothing is stored when it fails), update, rotation, removal, and a credential canary
// that must surface nowhere but as ciphertext.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from './support/capture-logger.js';
import type { Task } from '../src/generated/prisma/client.js';
import { TaskEffects } from '../src/domain/tasks/task-effects.js';
import { auditEntriesFor, concurrently, errorFields, startTestApi, testDatabaseUrl, type GraphQLResponse, type TestApi } from './support/harness.js';
import { canary, encodings } from './support/leak-search.js';
import { waitFor } from './support/worker-harness.js';

const run = promisify(execFile);

let api: TestApi;
let owner: string;
/** Every GraphQL response body this file received, for the canary check. */
const responses: string[] = [];

beforeAll(async () => {
  api = await startTestApi('orgs');
  owner = await api.token('OWNER');
});
afterAll(async () => {
  await api?.close();
});

async function gql<T = any>(query: string, variables: Record<string, unknown> = {}, token: string | null = owner): Promise<GraphQLResponse<T>> {
  const res = await api.gql<T>(query, variables, token);
  responses.push(JSON.stringify(res.body));
  return res;
}

/** The body's data, failing the test (with the errors shown) when GraphQL reported errors. */
async function data<T = any>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await gql<T>(query, variables);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  expect(res.status).toBe(200);
  return res.body.data as T;
}

const orgFields = 'id alias kind isDevHub instanceUrl status salesforceOrgId lastCheckedAt createdAt updatedAt';

const registerMutation = `mutation Register($input: RegisterOrgInput!) {
  registerOrg(input: $input) {
    __typename
    ... on RegisterOrgSuccess { org { ${orgFields} } }
    ... on InvalidCredentialsError { path }
    ${errorFields}
  }
}`;

async function register(input: Record<string, unknown>): Promise<any> {
  return (await data(registerMutation, { input })).registerOrg;
}

/** Registers and insists on success; returns the Org. */
async function registerOk(alias: string, credentials: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<any> {
  const result = await register({ alias, kind: 'SANDBOX', credentials, ...extra });
  expect(result.__typename, JSON.stringify(result)).toBe('RegisterOrgSuccess');
  return result.org;
}

function fakeRefreshToken(): string {
  return `5Aep861${randomBytes(30).toString('base64url').replace(/[-_]/g, 'x')}`;
}

/** Counts of everything a registration writes; equal before and after a failed mutation. */
async function storedCounts(): Promise<{ orgs: number; secrets: number; audit: number }> {
  const [orgs, secrets, audit] = await Promise.all([api.prisma.org.count(), api.prisma.secret.count(), api.prisma.auditEntry.count()]);
  return { orgs, secrets, audit };
}

// Runs first, while the schema holds only these orgs, so the expected order is exactly theirs.
describe('orgs pagination', () => {
  const aliases = ['pg-delta', 'pg-alpha', 'pg-golf', 'pg-charlie', 'pg-echo', 'pg-bravo', 'pg-foxtrot'];
  const sorted = [...aliases].sort();
  const pageQuery = `query Page($first: Int, $after: String, $last: Int, $before: String) {
    orgs(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { alias } }
    }
  }`;
  const page = async (args: Record<string, unknown>) => (await data(pageQuery, args)).orgs;
  const aliasesOf = (p: any) => p.edges.map((e: any) => e.node.alias);

  beforeAll(async () => {
    expect(await api.prisma.org.count()).toBe(0);
    for (const alias of aliases) await registerOk(alias, { instanceUrl: `https://${alias}.my.salesforce.com`, refreshToken: fakeRefreshToken() });
  });

  it('lists every org sorted by alias with totalCount', async () => {
    const all = await page({});
    expect(aliasesOf(all)).toEqual(sorted);
    expect(all.totalCount).toBe(7);
  });

  it('pages forward with first/after', async () => {
    const p1 = await page({ first: 3 });
    expect(aliasesOf(p1)).toEqual(sorted.slice(0, 3));
    expect(p1.totalCount).toBe(7);
    expect(p1.pageInfo.hasNextPage).toBe(true);
    expect(p1.pageInfo.endCursor).toBe(p1.edges[2].cursor);

    const p2 = await page({ first: 3, after: p1.pageInfo.endCursor });
    expect(aliasesOf(p2)).toEqual(sorted.slice(3, 6));
    expect(p2.pageInfo.hasNextPage).toBe(true);
    expect(p2.totalCount).toBe(7);

    const p3 = await page({ first: 3, after: p2.pageInfo.endCursor });
    expect(aliasesOf(p3)).toEqual(sorted.slice(6));
    expect(p3.pageInfo.hasNextPage).toBe(false);
  });

  it('pages backward with last/before', async () => {
    const p1 = await page({ last: 3 });
    expect(aliasesOf(p1)).toEqual(sorted.slice(4));
    expect(p1.pageInfo.hasPreviousPage).toBe(true);
    expect(p1.totalCount).toBe(7);

    const p2 = await page({ last: 3, before: p1.pageInfo.startCursor });
    expect(aliasesOf(p2)).toEqual(sorted.slice(1, 4));
    expect(p2.pageInfo.hasPreviousPage).toBe(true);

    const p3 = await page({ last: 3, before: p2.pageInfo.startCursor });
    expect(aliasesOf(p3)).toEqual(sorted.slice(0, 1));
    expect(p3.pageInfo.hasPreviousPage).toBe(false);
  });

  it('mixes directions: the page before a forward cursor', async () => {
    const forward = await page({ first: 5 });
    const back = await page({ last: 2, before: forward.edges[4].cursor });
    expect(aliasesOf(back)).toEqual(sorted.slice(2, 4));
  });
});

describe('registerOrg', () => {
  it("registers from an SFDX auth URL the Salesforce CLI wrote for an auth without a client id (force://<token>@<instance>)", async () => {
    const refreshToken = fakeRefreshToken();
    const org = await registerOk('sfdx-token-only', { sfdxAuthUrl: `force://${refreshToken}@tokenonly.my.salesforce.com` });
    expect(org).toMatchObject({ alias: 'sfdx-token-only', instanceUrl: 'https://tokenonly.my.salesforce.com' });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'sfdx-token-only' } });
    expect(await api.services.secrets.get(row.secretRef)).toEqual({ instanceUrl: 'https://tokenonly.my.salesforce.com', refreshToken });
  });

  it('registers from an SFDX auth URL', async () => {
    const refreshToken = fakeRefreshToken();
    const before = await storedCounts();
    const org = await registerOk('sfdx-org', { sfdxAuthUrl: `force://PlatformCLI::${refreshToken}@acme.my.salesforce.com` });
    expect(org).toMatchObject({
      alias: 'sfdx-org',
      kind: 'SANDBOX',
      isDevHub: false,
      instanceUrl: 'https://acme.my.salesforce.com',
      status: 'UNVERIFIED',
      salesforceOrgId: null,
      lastCheckedAt: null,
    });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'sfdx-org' } });
    expect(row.secretRef).not.toContain(refreshToken);
    expect(await api.services.secrets.get(row.secretRef)).toEqual({
      instanceUrl: 'https://acme.my.salesforce.com',
      refreshToken,
      clientId: 'PlatformCLI',
    });
    const after = await storedCounts();
    expect(after).toEqual({ orgs: before.orgs + 1, secrets: before.secrets + 1, audit: before.audit + 2 });
  });

  it('normalises the instance URL of an auth URL to its https origin', async () => {
    const org = await registerOk('sfdx-upper', {
      sfdxAuthUrl: `force://PlatformCLI::${fakeRefreshToken()}@https://Acme-Dev.My.Salesforce.com:443/`,
    });
    expect(org.instanceUrl).toBe('https://acme-dev.my.salesforce.com');
  });

  it('registers from instanceUrl + refreshToken + connected-app keys', async () => {
    const refreshToken = fakeRefreshToken();
    const clientSecret = randomBytes(16).toString('hex');
    const org = await registerOk(
      'fields-org',
      { instanceUrl: 'dev-ed.develop.my.salesforce.com', refreshToken, clientId: '3MVG9-app', clientSecret },
      { kind: 'PRODUCTION', isDevHub: true },
    );
    expect(org).toMatchObject({
      alias: 'fields-org',
      kind: 'PRODUCTION',
      isDevHub: true,
      instanceUrl: 'https://dev-ed.develop.my.salesforce.com',
      status: 'UNVERIFIED',
    });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'fields-org' } });
    expect(await api.services.secrets.get(row.secretRef)).toEqual({
      instanceUrl: 'https://dev-ed.develop.my.salesforce.com',
      refreshToken,
      clientId: '3MVG9-app',
      clientSecret,
    });
  });

  it('registers from instanceUrl + refreshToken alone, and accepts plain http only on loopback', async () => {
    const org = await registerOk('loopback-org', { instanceUrl: 'http://127.0.0.1:8443', refreshToken: fakeRefreshToken() });
    expect(org.instanceUrl).toBe('http://127.0.0.1:8443');
    const local = await registerOk('localhost-org', { instanceUrl: 'http://localhost:9000/', refreshToken: fakeRefreshToken() });
    expect(local.instanceUrl).toBe('http://localhost:9000');
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'loopback-org' } });
    const secret = await api.services.secrets.get(row.secretRef);
    expect(Object.keys(secret!).sort()).toEqual(['instanceUrl', 'refreshToken']);
  });

  it('returns the org through orgs, org(alias:) and node(id:)', async () => {
    const org = await registerOk('query-org', { instanceUrl: 'https://query.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const res = await data(
      `query Q($id: ID!) {
        org(alias: "query-org") { ${orgFields} }
        missing: org(alias: "no-such-org") { id }
        node(id: $id) { __typename id ... on Org { alias instanceUrl status } }
        orgs(first: 100) { totalCount edges { node { id alias } } }
      }`,
      { id: org.id },
    );
    expect(res.org).toEqual(org);
    expect(res.missing).toBeNull();
    expect(res.node).toEqual({ __typename: 'Org', id: org.id, alias: 'query-org', instanceUrl: 'https://query.my.salesforce.com', status: 'UNVERIFIED' });
    expect(res.orgs.edges.map((e: any) => e.node)).toContainEqual({ id: org.id, alias: 'query-org' });
    expect(res.orgs.totalCount).toBe(await api.prisma.org.count());
  });
});

describe('registerOrg validation', () => {
  it('does not quote back a credential written unquoted in the document (a literal of the wrong type)', async () => {
    const secret = `SeCrEtLiTeRaL${randomBytes(8).toString('hex')}`;
    for (const literal of [secret, `[\"${secret}\"]`, `{ a: \"${secret}\" }`]) {
      const res = await gql(`mutation { registerOrg(input: { alias: "lit", kind: SANDBOX, credentials: { instanceUrl: "https://lit.my.salesforce.com", refreshToken: ${literal.replace(/\\"/g, '"')} } }) { __typename } }`);
      expect(res.body.errors?.length, literal).toBeGreaterThan(0);
      expect(JSON.stringify(res.body), literal).not.toContain(secret);
      expect(res.body.errors![0]!.message).toMatch(/String cannot represent a non string value/);
    }
    expect(await api.prisma.org.findUnique({ where: { alias: 'lit' } })).toBeNull();
  });

  it.each([
    ['has space'],
    ['-leading-dash'],
    ['.leading-dot'],
    ['a/b'],
    [''],
    ['x'.repeat(81)],
  ])('rejects alias %j with a ValidationError at ["alias"] and stores nothing', async (alias) => {
    const before = await storedCounts();
    const result = await register({ alias, kind: 'SANDBOX', credentials: { instanceUrl: 'https://a.my.salesforce.com', refreshToken: fakeRefreshToken() } });
    expect(result.__typename).toBe('ValidationError');
    expect(result.code).toBe('VALIDATION_FAILED');
    expect(result.fieldErrors).toHaveLength(1);
    expect(result.fieldErrors[0].path).toEqual(['alias']);
    expect(await storedCounts()).toEqual(before);
  });

  it('accepts an 80-character alias and trims surrounding blanks', async () => {
    const long = `a${'b'.repeat(79)}`;
    expect((await registerOk(long, { instanceUrl: 'https://long.my.salesforce.com', refreshToken: fakeRefreshToken() })).alias).toBe(long);
    expect((await registerOk('  trimmed-org  ', { instanceUrl: 'https://t.my.salesforce.com', refreshToken: fakeRefreshToken() })).alias).toBe(
      'trimmed-org',
    );
  });

  const secret = `SeCrEt${randomBytes(12).toString('hex')}`;
  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ['an auth URL without the client secret part', { sfdxAuthUrl: `force://PlatformCLI:${secret}@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL without an instance', { sfdxAuthUrl: `force://PlatformCLI::${secret}` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with another scheme', { sfdxAuthUrl: `https://PlatformCLI::${secret}@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with an http instance', { sfdxAuthUrl: `force://PlatformCLI::${secret}@http://acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with a blank in the refresh token', { sfdxAuthUrl: `force://PlatformCLI::${secret} x@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with a blank in the client id', { sfdxAuthUrl: `force://my app::${secret}@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with a blank in the client secret', { sfdxAuthUrl: `force://PlatformCLI:${secret} x:5Aep861token@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an auth URL with a client secret but no client id', { sfdxAuthUrl: `force://:${secret}:5Aep861token@acme.my.salesforce.com` }, ['credentials', 'sfdxAuthUrl']],
    ['an http instance URL', { instanceUrl: 'http://acme.my.salesforce.com', refreshToken: secret }, ['credentials', 'instanceUrl']],
    ['an instance URL carrying a password', { instanceUrl: `https://user:${secret}@acme.my.salesforce.com`, refreshToken: 'r' }, ['credentials', 'instanceUrl']],
    ['an http instance URL carrying a password', { instanceUrl: `http://user:${secret}@acme.my.salesforce.com`, refreshToken: 'r' }, ['credentials', 'instanceUrl']],
    ['an unparsable instance URL carrying a password', { instanceUrl: `https://user:${secret}@exa mple.com`, refreshToken: 'r' }, ['credentials', 'instanceUrl']],
    ['an instance URL with a path', { instanceUrl: 'https://acme.my.salesforce.com/services/oauth2', refreshToken: secret }, ['credentials', 'instanceUrl']],
    ['an unparsable instance URL', { instanceUrl: 'https://exa mple.com', refreshToken: secret }, ['credentials', 'instanceUrl']],
    [
      'both forms',
      { sfdxAuthUrl: `force://PlatformCLI::${secret}@acme.my.salesforce.com`, instanceUrl: 'https://acme.my.salesforce.com', refreshToken: secret },
      ['credentials'],
    ],
    ['a missing refreshToken', { instanceUrl: 'https://acme.my.salesforce.com', clientId: 'app', clientSecret: secret }, ['credentials', 'refreshToken']],
    ['a missing instanceUrl', { refreshToken: secret }, ['credentials', 'instanceUrl']],
    ['no credentials at all', {}, ['credentials', 'instanceUrl']],
    ['clientSecret without clientId', { instanceUrl: 'https://acme.my.salesforce.com', refreshToken: 'r', clientSecret: secret }, ['credentials', 'clientId']],
    ['a refresh token with blanks', { instanceUrl: 'https://acme.my.salesforce.com', refreshToken: `${secret} ${secret}` }, ['credentials', 'refreshToken']],
  ];

  it.each(cases)('rejects %s with InvalidCredentialsError, never echoing the secret', async (_name, credentials, path) => {
    const before = await storedCounts();
    const res = await gql(registerMutation, { input: { alias: 'bad-creds', kind: 'SANDBOX', credentials } });
    expect(res.body.errors).toBeUndefined();
    const result = res.body.data.registerOrg;
    expect(result.__typename).toBe('InvalidCredentialsError');
    expect(result.code).toBe('INVALID_CREDENTIALS');
    expect(result.path).toEqual(path);
    expect(result.message.length).toBeGreaterThan(0);
    expect(result.message).not.toContain(secret);
    expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(await storedCounts()).toEqual(before);
    expect(await api.prisma.org.findUnique({ where: { alias: 'bad-creds' } })).toBeNull();
  });

  it('refuses a taken alias with ALIAS_TAKEN and stores nothing', async () => {
    await registerOk('dup-org', { instanceUrl: 'https://dup.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const before = await storedCounts();
    for (const alias of ['dup-org', ' dup-org ']) {
      const result = await register({ alias, kind: 'SCRATCH', credentials: { instanceUrl: 'https://other.my.salesforce.com', refreshToken: fakeRefreshToken() } });
      expect(result).toMatchObject({ __typename: 'ConflictError', code: 'ALIAS_TAKEN' });
      expect(result.message).toContain('dup-org');
    }
    expect(await storedCounts()).toEqual(before);
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'dup-org' } });
    expect(row.instanceUrl).toBe('https://dup.my.salesforce.com');
  });

  it('lets exactly one of several concurrent registrations of one alias win, leaving no orphaned secret', async () => {
    const before = await storedCounts();
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        register({ alias: 'race-org', kind: 'SANDBOX', credentials: { instanceUrl: `https://race${i}.my.salesforce.com`, refreshToken: fakeRefreshToken() } }),
      ),
    );
    const typenames = results.map((r) => r.__typename).sort();
    expect(typenames.filter((t) => t === 'RegisterOrgSuccess')).toHaveLength(1);
    for (const r of results) if (r.__typename !== 'RegisterOrgSuccess') expect(r).toMatchObject({ __typename: 'ConflictError', code: 'ALIAS_TAKEN' });
    expect(await storedCounts()).toEqual({ orgs: before.orgs + 1, secrets: before.secrets + 1, audit: before.audit + 2 });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'race-org' } });
    expect(await api.prisma.secret.findUnique({ where: { name: row.secretRef } })).not.toBeNull();
  });

  it('refuses registration to roles without manageOrgs', async () => {
    const member = await api.token('MEMBER');
    const before = await storedCounts();
    const res = await gql(
      registerMutation,
      { input: { alias: 'member-org', kind: 'SANDBOX', credentials: { instanceUrl: 'https://m.my.salesforce.com', refreshToken: 'r' } } },
      member,
    );
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await storedCounts()).toEqual(before);
  });
});

const updateMutation = `mutation Update($alias: String!, $patch: UpdateOrgInput!) {
  updateOrg(alias: $alias, patch: $patch) {
    __typename
    ... on UpdateOrgSuccess { org { ${orgFields} } }
    ${errorFields}
  }
}`;

describe('updateOrg', () => {
  let original: any;
  let rawId: string;
  beforeAll(async () => {
    original = await registerOk('upd-a', { instanceUrl: 'https://upd.my.salesforce.com', refreshToken: fakeRefreshToken() });
    rawId = (await api.prisma.org.findUniqueOrThrow({ where: { alias: 'upd-a' } })).id;
    await registerOk('upd-other', { instanceUrl: 'https://upd-other.my.salesforce.com', refreshToken: fakeRefreshToken() });
  });
  const update = async (alias: string, patch: Record<string, unknown>) => (await data(updateMutation, { alias, patch })).updateOrg;

  it('renames an org, keeping its id', async () => {
    const result = await update('upd-a', { alias: 'upd-b' });
    expect(result.__typename).toBe('UpdateOrgSuccess');
    expect(result.org).toMatchObject({ id: original.id, alias: 'upd-b', kind: 'SANDBOX', isDevHub: false });
    const res = await data('{ old: org(alias: "upd-a") { id } renamed: org(alias: "upd-b") { id alias } }');
    expect(res.old).toBeNull();
    expect(res.renamed).toEqual({ id: original.id, alias: 'upd-b' });
  });

  it('changes kind and isDevHub, leaving omitted fields alone', async () => {
    const result = await update('upd-b', { kind: 'PRODUCTION', isDevHub: true });
    expect(result.org).toMatchObject({ id: original.id, alias: 'upd-b', kind: 'PRODUCTION', isDevHub: true, instanceUrl: 'https://upd.my.salesforce.com' });
    const again = await update('upd-b', { isDevHub: false });
    expect(again.org).toMatchObject({ alias: 'upd-b', kind: 'PRODUCTION', isDevHub: false });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { id: rawId } });
    expect(row).toMatchObject({ alias: 'upd-b', kind: 'PRODUCTION', isDevHub: false });
  });

  it('writes and audits nothing for a patch that changes nothing', async () => {
    const audited = async () => (await auditEntriesFor(api, owner, rawId)).length;
    const before = await audited();
    const stored = await storedCounts();
    const { updatedAt } = await api.prisma.org.findUniqueOrThrow({ where: { id: rawId } });
    for (const patch of [{}, { kind: 'PRODUCTION', isDevHub: false }, { alias: 'upd-b' }]) {
      const result = await update('upd-b', patch);
      expect(result.org).toMatchObject({ id: original.id, alias: 'upd-b', kind: 'PRODUCTION', isDevHub: false });
    }
    expect(await audited()).toBe(before);
    expect(await storedCounts()).toEqual(stored);
    expect((await api.prisma.org.findUniqueOrThrow({ where: { id: rawId } })).updatedAt).toEqual(updatedAt);
  });

  it('files a task submitted while the org is being renamed under the new alias', async () => {
    await registerOk('rn-before', { instanceUrl: 'https://rnbefore.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rn-before' } });
    let submitted: Promise<any> | undefined;
    // A rename under way, as updateOrg's transaction makes it: the org's alias, then its tasks' copies of it.
    await api.prisma.$transaction(async (tx) => {
      await tx.org.update({ where: { id: org.id }, data: { alias: 'rn-after' } });
      await tx.task.updateMany({ where: { orgId: org.id }, data: { orgAlias: 'rn-after' } });
      submitted = data(submitMutation, { input: { type: 'DIAGNOSTIC', org: 'rn-before' } }); // finds the org by its old alias, then waits to write
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    expect((await submitted!).submitTask.__typename).toBe('SubmitTaskSuccess');
    // It used to keep the alias it was validated with: missing from the org's filtered history, and shown in
    // the history of any org that later took the old name.
    expect(await api.prisma.task.findMany({ where: { orgId: org.id }, select: { orgAlias: true } })).toEqual([{ orgAlias: 'rn-after' }]);
    const listed = await data(`{ tasks(first: 5, filter: { org: "rn-after" }) { edges { node { org { alias } } } } }`);
    expect(listed.tasks.edges).toHaveLength(1);
  });

  it('refuses a rename onto a taken alias with ALIAS_TAKEN', async () => {
    const before = await storedCounts();
    const result = await update('upd-b', { alias: 'upd-other', kind: 'SCRATCH' });
    expect(result).toMatchObject({ __typename: 'ConflictError', code: 'ALIAS_TAKEN' });
    expect(result.message).toContain('upd-other');
    const row = await api.prisma.org.findUniqueOrThrow({ where: { id: rawId } });
    expect(row).toMatchObject({ alias: 'upd-b', kind: 'PRODUCTION' });
    expect(await storedCounts()).toEqual(before);
  });

  it('answers ORG_NOT_FOUND for an unknown alias', async () => {
    const result = await update('no-such-org', { isDevHub: true });
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
  });

  it('validates the new alias at ["patch", "alias"]', async () => {
    const result = await update('upd-b', { alias: 'not valid' });
    expect(result.__typename).toBe('ValidationError');
    expect(result.fieldErrors.map((e: any) => e.path)).toEqual([['patch', 'alias']]);
    expect((await api.prisma.org.findUniqueOrThrow({ where: { id: rawId } })).alias).toBe('upd-b');
  });
});

const rotateMutation = `mutation Rotate($alias: String!, $credentials: OrgCredentialsInput!) {
  rotateOrgCredentials(alias: $alias, credentials: $credentials) {
    __typename
    ... on RotateOrgCredentialsSuccess { org { ${orgFields} } }
    ... on InvalidCredentialsError { path }
    ${errorFields}
  }
}`;

describe('rotateOrgCredentials', () => {
  it('replaces the stored credentials and puts the org back to UNVERIFIED', async () => {
    const oldToken = fakeRefreshToken();
    const org = await registerOk('rot-org', { instanceUrl: 'https://rot.my.salesforce.com', refreshToken: oldToken });
    const row = await api.prisma.org.update({
      where: { alias: 'rot-org' },
      data: { status: 'CONNECTED', sfOrgId: '00D000000000001EAA', lastCheckedAt: new Date() },
    });
    const beforeSecret = await api.services.secrets.get(row.secretRef);
    const beforeRow = await api.prisma.secret.findUniqueOrThrow({ where: { name: row.secretRef } });
    const secretsBefore = await api.prisma.secret.count();

    const newToken = fakeRefreshToken();
    const result = (
      await data(rotateMutation, {
        alias: 'rot-org',
        credentials: { sfdxAuthUrl: `force://PlatformCLI::${newToken}@rot2.my.salesforce.com` },
      })
    ).rotateOrgCredentials;
    expect(result.__typename).toBe('RotateOrgCredentialsSuccess');
    expect(result.org).toMatchObject({ id: org.id, alias: 'rot-org', status: 'UNVERIFIED', instanceUrl: 'https://rot2.my.salesforce.com' });

    const afterSecret = await api.services.secrets.get(row.secretRef);
    expect(beforeSecret).toEqual({ instanceUrl: 'https://rot.my.salesforce.com', refreshToken: oldToken });
    expect(afterSecret).toEqual({ instanceUrl: 'https://rot2.my.salesforce.com', refreshToken: newToken, clientId: 'PlatformCLI' });
    const afterRow = await api.prisma.secret.findUniqueOrThrow({ where: { name: row.secretRef } });
    expect(Buffer.from(afterRow.ciphertext).equals(Buffer.from(beforeRow.ciphertext))).toBe(false);
    expect(afterRow.version).toBe(beforeRow.version + 1);
    expect(await api.prisma.secret.count()).toBe(secretsBefore);
    expect((await api.prisma.org.findUniqueOrThrow({ where: { id: row.id } })).secretRef).toBe(row.secretRef);
  });

  it('keeps the old credentials and status when the new ones are invalid', async () => {
    await api.prisma.org.update({ where: { alias: 'rot-org' }, data: { status: 'CONNECTED' } });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rot-org' } });
    const before = await api.services.secrets.get(row.secretRef);
    const secret = fakeRefreshToken();
    const res = await gql(rotateMutation, { alias: 'rot-org', credentials: { instanceUrl: 'http://evil.example.com', refreshToken: secret } });
    const result = res.body.data.rotateOrgCredentials;
    expect(result).toMatchObject({ __typename: 'InvalidCredentialsError', code: 'INVALID_CREDENTIALS', path: ['credentials', 'instanceUrl'] });
    expect(JSON.stringify(res.body)).not.toContain(secret);
    expect(await api.services.secrets.get(row.secretRef)).toEqual(before);
    expect((await api.prisma.org.findUniqueOrThrow({ where: { id: row.id } })).status).toBe('CONNECTED');
  });

  it('answers ORG_NOT_FOUND for an unknown alias', async () => {
    const result = (await data(rotateMutation, { alias: 'no-such-org', credentials: { instanceUrl: 'https://x.my.salesforce.com', refreshToken: 'r' } }))
      .rotateOrgCredentials;
    expect(result).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
  });
});

const removeMutation = `mutation Remove($alias: String!) {
  removeOrg(alias: $alias) {
    __typename
    ... on RemoveOrgSuccess { removed { id alias } }
    ${errorFields}
  }
}`;
const submitMutation = `mutation Submit($input: SubmitTaskInput!) {
  submitTask(input: $input) { __typename ... on SubmitTaskSuccess { task { id status orgAlias } } ${errorFields} }
}`;
const cancelMutation = `mutation Cancel($id: ID!) {
  cancelTask(id: $id) { __typename ... on CancelTaskSuccess { task { id status } } ${errorFields} }
}`;

describe('org status after a rotation', () => {
  it('changes only with the outcome of a task that ran on the current credentials', async () => {
    await registerOk('status-rot', { instanceUrl: 'https://statusrot.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const startedOnOld = new Date(Date.now() - 60_000); // a deployment that started a minute before the rotation
    const rotated = await data(rotateMutation, { alias: 'status-rot', credentials: { instanceUrl: 'https://statusrot.my.salesforce.com', refreshToken: fakeRefreshToken() } });
    expect(rotated.rotateOrgCredentials.__typename).toBe('RotateOrgCredentialsSuccess');
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'status-rot' } });
    const effects = new TaskEffects(api.prisma, api.services.artifacts);
    const run = (type: string, startedAt: Date) => ({ id: randomUUID(), type, orgId: org.id, startedAt, attempts: 1 }) as unknown as Task;
    const status = async () => (await api.prisma.org.findUniqueOrThrow({ where: { id: org.id } })).status;

    // A deployment that took the old refresh token (revoked at the rotation) fails late: not the new credentials' fault.
    await effects.failed(run('DEPLOY', startedOnOld), { code: 'ORG_AUTH_FAILED', message: 'expired access/refresh token' });
    expect(await status()).toBe('UNVERIFIED');
    // A check of the old credentials that succeeds says nothing about the new ones either.
    await effects.succeeded(run('ORG_CHECK', startedOnOld), { organizationId: '00D000000000001' });
    expect(await status()).toBe('UNVERIFIED');

    // Runs on the new credentials count, also the check the rotation queued when the worker that claimed it
    // (milliseconds after the rotation) has a clock 2 s behind the API's.
    await effects.succeeded(run('ORG_CHECK', new Date(org.credentialsChangedAt.getTime() - 2000)), { organizationId: '00D000000000001' });
    expect(await status()).toBe('CONNECTED');
    await effects.failed(run('DEPLOY', new Date()), { code: 'ORG_AUTH_FAILED', message: 'expired access/refresh token' });
    expect(await status()).toBe('AUTH_FAILED');
  });
});

describe('removeOrg', () => {
  const remove = async (alias: string) => (await data(removeMutation, { alias })).removeOrg;

  it('is refused while the org has a queued task, and allowed once it is cancelled', async () => {
    await registerOk('rm-org', { instanceUrl: 'https://rm.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-org' } });
    const submitted = (await data(submitMutation, { input: { type: 'ORG_CHECK', org: 'rm-org' } })).submitTask;
    expect(submitted.__typename).toBe('SubmitTaskSuccess');
    expect(submitted.task.status).toBe('QUEUED');

    const refused = await remove('rm-org');
    expect(refused).toMatchObject({ __typename: 'ConflictError', code: 'ORG_HAS_ACTIVE_TASKS' });
    expect(await api.prisma.org.findUnique({ where: { id: row.id } })).not.toBeNull();
    expect(await api.services.secrets.get(row.secretRef)).not.toBeNull();

    const cancelled = (await data(cancelMutation, { id: submitted.task.id })).cancelTask;
    expect(cancelled).toMatchObject({ __typename: 'CancelTaskSuccess', task: { status: 'CANCELLED' } });

    const removed = await remove('rm-org');
    expect(removed).toEqual({ __typename: 'RemoveOrgSuccess', removed: { id: row.id, alias: 'rm-org' } });
    expect(await api.prisma.org.findUnique({ where: { id: row.id } })).toBeNull();
    expect(await api.prisma.secret.findUnique({ where: { name: row.secretRef } })).toBeNull();
    expect(await api.services.secrets.get(row.secretRef)).toBeNull();

    const task = (await data('query T($id: ID!) { task(id: $id) { status orgAlias org { id } } }', { id: submitted.task.id })).task;
    expect(task).toEqual({ status: 'CANCELLED', orgAlias: 'rm-org', org: null });
    expect((await data('{ org(alias: "rm-org") { id } }')).org).toBeNull();
  });

  it('waits for a task being written for the org and counts it: the removal is refused, and the task keeps its org', async () => {
    // The active tasks used to be counted before the removal's transaction only: a task submitted in between
    // (its insert holding the org's row for its foreign key) was left QUEUED with its org removed under it.
    await registerOk('rm-written', { instanceUrl: 'https://rmwritten.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-written' } });
    let removal: Promise<any> | undefined;
    const taskId = randomUUID();
    await api.prisma.$transaction(async (tx) => {
      await tx.task.create({
        data: { id: taskId, type: 'DIAGNOSTIC', status: 'QUEUED', queue: 'NORMAL', priority: 50, input: {}, maxAttempts: 1, source: 'API', requestedBy: 'test', orgId: org.id, orgAlias: org.alias },
      });
      removal = remove('rm-written'); // sees no active task yet (not committed), then waits for the org's row
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    expect(await removal).toMatchObject({ __typename: 'ConflictError', code: 'ORG_HAS_ACTIVE_TASKS' });
    expect(await api.prisma.org.findUnique({ where: { id: org.id } })).not.toBeNull();
    expect((await api.prisma.task.findUniqueOrThrow({ where: { id: taskId } })).orgId).toBe(org.id);
    await api.prisma.task.delete({ where: { id: taskId } });
  });

  it('makes a task submitted while the org is being removed ORG_NOT_FOUND, not an internal error', async () => {
    await registerOk('rm-removing', { instanceUrl: 'https://rmremoving.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-removing' } });
    let submitted: Promise<any> | undefined;
    // A removal under way, as removeOrg's transaction holds it: the org's row locked, then deleted.
    await api.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM "Org" WHERE id = ${org.id}::uuid FOR UPDATE`;
      await tx.org.delete({ where: { id: org.id } });
      submitted = data(submitMutation, { input: { type: 'DIAGNOSTIC', org: 'rm-removing' } }); // finds the org, then waits to write
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    expect((await submitted!).submitTask).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND', message: expect.stringMatching(/removed while the task was being created/) });
    expect(await api.prisma.task.count({ where: { orgAlias: 'rm-removing' } })).toBe(0);
  });

  it('makes a schedule or a webhook rule created while the org is being removed ORG_NOT_FOUND, not an internal error', async () => {
    const source = (await data(`mutation { createWebhookSource(kind: GITHUB, name: "rm-race") { ... on CreateWebhookSourceSuccess { created { source { id } } } } }`))
      .createWebhookSource.created.source.id;
    const creations = {
      scheduleTask: (alias: string) =>
        data(`mutation($input: ScheduleTaskInput!) { scheduleTask(input: $input) { __typename ... on Error { code message } } }`, {
          input: { type: 'ORG_CHECK', org: alias, cron: '0 3 * * *' },
        }),
      createWebhookRule: (alias: string) =>
        data(`mutation($input: WebhookRuleInput!) { createWebhookRule(input: $input) { __typename ... on Error { code message } } }`, {
          input: { sourceId: source, name: 'checks', event: 'push', taskType: 'ORG_CHECK', org: alias },
        }),
    };
    for (const [field, create] of Object.entries(creations)) {
      const alias = `rm-race-${field.toLowerCase()}`;
      await registerOk(alias, { instanceUrl: 'https://rmrace.my.salesforce.com', refreshToken: fakeRefreshToken() });
      const org = await api.prisma.org.findUniqueOrThrow({ where: { alias } });
      let created: Promise<any> | undefined;
      // A removal under way, as removeOrg's transaction holds it: the org's row locked, then deleted.
      await api.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM "Org" WHERE id = ${org.id}::uuid FOR UPDATE`;
        await tx.org.delete({ where: { id: org.id } });
        created = create(alias); // finds the org, then waits to write
        await new Promise((resolve) => setTimeout(resolve, 500));
      });
      expect((await created!)[field], field).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND', message: expect.stringMatching(/removed while/) });
    }
    expect(await api.prisma.schedule.count({ where: { org: { alias: { startsWith: 'rm-race' } } } })).toBe(0);
    expect(await api.prisma.webhookRule.count({ where: { orgAlias: { startsWith: 'rm-race' } } })).toBe(0);
  });

  it('is refused while the org has a scheduled task', async () => {
    await registerOk('rm-sched', { instanceUrl: 'https://rms.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const submitted = (await data(submitMutation, { input: { type: 'ORG_CHECK', org: 'rm-sched', runAt } })).submitTask;
    expect(submitted.task.status).toBe('SCHEDULED');
    expect(await remove('rm-sched')).toMatchObject({ __typename: 'ConflictError', code: 'ORG_HAS_ACTIVE_TASKS' });
    expect(await api.prisma.org.findUnique({ where: { alias: 'rm-sched' } })).not.toBeNull();
  });

  it('removes an org without tasks together with its secret', async () => {
    await registerOk('rm-plain', { instanceUrl: 'https://rmp.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-plain' } });
    const secrets = await api.prisma.secret.count();
    expect((await remove('rm-plain')).__typename).toBe('RemoveOrgSuccess');
    expect(await api.prisma.secret.count()).toBe(secrets - 1);
    expect(await api.prisma.secret.findUnique({ where: { name: row.secretRef } })).toBeNull();
  });

  type Gql = (query: string, variables: Record<string, unknown>) => Promise<any>;

  /**
   * Runs `body` against a replica of the API with org checks on (same database), once `alias` is registered
   * through it: `on` sends GraphQL to that replica, `check` is the ORG_CHECK the registration queued.
   */
  async function withOrgChecks(name: string, alias: string, body: (on: Gql, check: Task) => Promise<void>): Promise<void> {
    const checking = await startTestApi(name, { shareWith: api, checkOrgsOnRegister: true });
    try {
      const on: Gql = async (query, variables) => (await checking.gql(query, variables, owner)).body.data;
      const registered = await on(registerMutation, { input: { alias, kind: 'SANDBOX', credentials: { instanceUrl: `https://${alias}.my.salesforce.com`, refreshToken: fakeRefreshToken() } } });
      expect(registered.registerOrg.__typename).toBe('RegisterOrgSuccess');
      const check = await api.prisma.task.findFirstOrThrow({ where: { orgAlias: alias, type: 'ORG_CHECK' } });
      expect(check.status).toBe('QUEUED');
      await body(on, check);
    } finally {
      await checking.close();
    }
  }

  it('with org checks on: a refused removal leaves the waiting check alone; one that goes ahead cancels it', async () => {
    await withOrgChecks('orgs_checks', 'rm-checked', async (on, check) => {
      const runAt = new Date(Date.now() + 3_600_000).toISOString();
      const other = (await on(submitMutation, { input: { type: 'DIAGNOSTIC', org: 'rm-checked', runAt } })).submitTask;
      expect(other.__typename).toBe('SubmitTaskSuccess');

      expect((await on(removeMutation, { alias: 'rm-checked' })).removeOrg).toMatchObject({ __typename: 'ConflictError', code: 'ORG_HAS_ACTIVE_TASKS' });
      expect(await api.prisma.task.findUniqueOrThrow({ where: { id: check.id } })).toMatchObject({ status: 'QUEUED' });

      expect((await on(cancelMutation, { id: other.task.id })).cancelTask.__typename).toBe('CancelTaskSuccess');
      // The waiting check alone does not hold the removal up: it goes with the org.
      expect((await on(removeMutation, { alias: 'rm-checked' })).removeOrg.__typename).toBe('RemoveOrgSuccess');
      expect(await api.prisma.task.findUniqueOrThrow({ where: { id: check.id } })).toMatchObject({ status: 'CANCELLED' });
    });
  });

  it('with org checks on: a removal refused once it holds the org (a task came in between) queues the check it cancelled again', async () => {
    await withOrgChecks('orgs_checks_late', 'rm-late', async (on, check) => {
      const org = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-late' } });
      let removal: Promise<any> | undefined;
      let late: { id: string } | undefined;
      await api.prisma.$transaction(async (tx) => {
        // A task being written for the org, as a submit's insert holds it: the removal counts no active task but
        // the check, cancels the check, and then waits for the org's row.
        late = await tx.task.create({
          data: { type: 'DIAGNOSTIC', status: 'QUEUED', queue: 'NORMAL', priority: 50, input: {}, maxAttempts: 1, source: 'API', requestedBy: 'test', orgAlias: 'rm-late', orgId: org.id },
        });
        removal = on(removeMutation, { alias: 'rm-late' });
        await waitFor(async () => (await api.prisma.task.findUniqueOrThrow({ where: { id: check.id } })).status === 'CANCELLED', 10_000, 'the check to be cancelled');
        await new Promise((resolve) => setTimeout(resolve, 200));
      });
      expect((await removal!).removeOrg).toMatchObject({ __typename: 'ConflictError', code: 'ORG_HAS_ACTIVE_TASKS' });
      const checks = await api.prisma.task.findMany({ where: { orgId: org.id, type: 'ORG_CHECK' }, orderBy: { createdAt: 'asc' } });
      expect(checks.map((c) => c.status)).toEqual(['CANCELLED', 'QUEUED']);
      await api.prisma.task.delete({ where: { id: late!.id } });
    });
  });

  it('answers ORG_NOT_FOUND for an unknown alias', async () => {
    expect(await remove('no-such-org')).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
  });

  it('answers ORG_NOT_FOUND to all but one of six concurrent removals, as to a later one, and audits one', async () => {
    await registerOk('rm-race', { instanceUrl: 'https://rmr.my.salesforce.com', refreshToken: fakeRefreshToken() });
    const row = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'rm-race' } });
    const results = await concurrently(api, owner, Array.from({ length: 6 }, () => ({ query: removeMutation, variables: { alias: 'rm-race' }, field: 'removeOrg' })));
    responses.push(JSON.stringify(results));
    const later = await remove('rm-race');
    expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
    expect(results.filter((r) => r.__typename === 'RemoveOrgSuccess')).toEqual([{ __typename: 'RemoveOrgSuccess', removed: { id: row.id, alias: 'rm-race' } }]);
    expect(results.filter((r) => r.__typename !== 'RemoveOrgSuccess')).toEqual(Array(5).fill(later));
    expect((await auditEntriesFor(api, owner, row.id)).map((e) => e.action).filter((action) => action === 'org.remove')).toEqual(['org.remove']);
    expect(await api.prisma.secret.findUnique({ where: { name: row.secretRef } })).toBeNull();
  });

  it('rotations and updates racing a removal answer success or ORG_NOT_FOUND, and leave no secret without its org', async () => {
    for (let round = 0; round < 3; round += 1) {
      const alias = `rm-rotate-${round}`;
      await registerOk(alias, { instanceUrl: 'https://rmrot.my.salesforce.com', refreshToken: fakeRefreshToken() });
      const row = await api.prisma.org.findUniqueOrThrow({ where: { alias } });
      const credentials = { instanceUrl: 'https://rmrot.my.salesforce.com', refreshToken: fakeRefreshToken() };
      const results = await concurrently(api, owner, [
        ...Array.from({ length: 3 }, () => ({ query: rotateMutation, variables: { alias, credentials }, field: 'rotateOrgCredentials' })),
        { query: updateMutation, variables: { alias, patch: { isDevHub: true } }, field: 'updateOrg' },
        { query: removeMutation, variables: { alias }, field: 'removeOrg' },
      ]);
      responses.push(JSON.stringify(results));
      for (const result of results.slice(0, 4)) {
        expect(result.__typename === 'NotFoundError' ? result.code : 'ok', JSON.stringify(result)).toMatch(/^(ok|ORG_NOT_FOUND)$/);
      }
      const org = await api.prisma.org.findUnique({ where: { id: row.id } });
      const secret = await api.prisma.secret.findUnique({ where: { name: row.secretRef } });
      expect({ org: org !== null, secret: secret !== null }, JSON.stringify(results)).toEqual({ org: org !== null, secret: org !== null });
    }
  });
});


describe('credential canary', () => {
  it('shows the credentials nowhere but as ciphertext in the Secret table', async () => {
    const refreshToken = canary('RT');
    const clientSecret = canary('CS');
    const authUrlToken = canary('AU');
    const authUrlSecret = canary('AS');
    const rotatedToken = canary('RR');
    const rejectedToken = canary('RJ');
    const canaries = [refreshToken, clientSecret, authUrlToken, authUrlSecret, rotatedToken, rejectedToken];

    const fieldsOrg = await registerOk('canary-org', {
      instanceUrl: 'https://canary.my.salesforce.com',
      refreshToken,
      clientId: 'canary-client',
      clientSecret,
    });
    const urlOrg = await registerOk('canary-url', { sfdxAuthUrl: `force://canary-client:${authUrlSecret}:${authUrlToken}@canary2.my.salesforce.com` });
    // Failures must not echo the values either.
    const rejected = await register({ alias: 'canary-org', kind: 'SANDBOX', credentials: { instanceUrl: 'https://c.my.salesforce.com', refreshToken: rejectedToken } });
    expect(rejected.code).toBe('ALIAS_TAKEN');
    const rejected2 = await register({ alias: 'canary-bad', kind: 'SANDBOX', credentials: { sfdxAuthUrl: `force://x:${rejectedToken}@http://evil.example.com` } });
    expect(rejected2.code).toBe('INVALID_CREDENTIALS');
    const rotated = (await data(rotateMutation, { alias: 'canary-url', credentials: { instanceUrl: 'canary3.my.salesforce.com', refreshToken: rotatedToken } }))
      .rotateOrgCredentials;
    expect(rotated.__typename).toBe('RotateOrgCredentialsSuccess');
    await data(
      `query Q($a: ID!, $b: ID!) {
        orgs(first: 100) { edges { node { ${orgFields} } } }
        a: node(id: $a) { ... on Org { ${orgFields} } }
        b: node(id: $b) { ... on Org { ${orgFields} } }
        auditEntries(first: 100) { edges { node { action details } } }
      }`,
      { a: fieldsOrg.id, b: urlOrg.id },
    );

    // The values were stored: the secret store decrypts them.
    const fieldsRow = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'canary-org' } });
    const urlRow = await api.prisma.org.findUniqueOrThrow({ where: { alias: 'canary-url' } });
    expect(await api.services.secrets.get(fieldsRow.secretRef)).toMatchObject({ refreshToken, clientSecret });
    expect(await api.services.secrets.get(urlRow.secretRef)).toMatchObject({ refreshToken: rotatedToken });

    // Nowhere in what the API answered or logged.
    expect(responses.length).toBeGreaterThan(5);
    const answered = responses.join('\n');
    const logged = api.logLines.join('');
    for (const value of canaries) {
      expect(answered).not.toContain(value);
      expect(logged).not.toContain(value);
    }

    // Nowhere in the database but as ciphertext.
    const database = new URL(testDatabaseUrl).pathname.slice(1);
    const { stdout: dump } = await run('pg_dump', ['--data-only', '-h', '127.0.0.1', '-U', 'postgres', '-n', api.schema, database], {
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(dump).toContain(fieldsRow.secretRef); // the dump really covers the Secret table
    expect(dump).toContain('canary-org');
    for (const value of canaries) {
      for (const needle of encodings(value)) expect(dump).not.toContain(needle); // plain, hex, base64 at every alignment
    }

    // The Secret row is ciphertext, nonce, tag and bookkeeping: no other column could hold a value.
    const columns = await api.prisma.$queryRaw<Array<{ column_name: string }>>`
      SELECT column_name::text AS column_name FROM information_schema.columns WHERE table_schema = ${api.schema} AND table_name = 'Secret'`;
    expect(columns.map((c) => c.column_name).sort()).toEqual(
      ['authTag', 'ciphertext', 'createdAt', 'id', 'keyId', 'name', 'nonce', 'updatedAt', 'version'].sort(),
    );
    const secretRow = await api.prisma.secret.findUniqueOrThrow({ where: { name: fieldsRow.secretRef } });
    expect(secretRow.nonce).toHaveLength(12);
    expect(secretRow.authTag).toHaveLength(16);
    const ciphertext = Buffer.from(secretRow.ciphertext);
    for (const value of [refreshToken, clientSecret]) expect(ciphertext.includes(Buffer.from(value))).toBe(false);
  });

  it('redacts credential fields should a credentials object ever reach the logger', () => {
    const { logger, lines } = captureLogger();
    const values = [`CANARYLOG${randomBytes(16).toString('hex')}`, `CANARYLOG${randomBytes(16).toString('hex')}`];
    logger.info({ credentials: { sfdxAuthUrl: `force://PlatformCLI:${values[0]}:${values[1]}@acme.my.salesforce.com` } }, 'auth url');
    logger.info({ credentials: { instanceUrl: 'https://acme.my.salesforce.com', refreshToken: values[0], clientSecret: values[1] } }, 'fields');
    expect(lines).toHaveLength(2);
    expect(lines.join('')).toContain('acme.my.salesforce.com');
    for (const value of values) expect(lines.join('')).not.toContain(value);
  });
});
