// The audit trail: org and token mutations append AuditEntry rows carrying the actor, the action, the target
// and the X-Request-Id of the request; only OWNERs read them, newest first; no credential ever lands in them.
import { randomBytes } from 'node:crypto';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorFields, startTestApi, type GraphQLResponse, type TestApi } from './support/harness.js';
import { canary } from './support/leak-search.js';

let api: TestApi;
let owner: string;
let ownerActor: string;

beforeAll(async () => {
  api = await startTestApi('audit');
  owner = await api.token('OWNER', { name: 'audit-owner' });
  ownerActor = 'owner-user/audit-owner';
});
afterAll(async () => {
  await api?.close();
});

/** Like api.gql, but sends an X-Request-Id header. */
async function gqlWithRequestId<T = any>(
  query: string,
  variables: Record<string, unknown>,
  requestId: string,
  token: string | null = owner,
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      'x-request-id': requestId,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] };
}

let requestCounter = 0;
function newRequestId(label: string): string {
  requestCounter += 1;
  return `req-${label}-${requestCounter}-${randomBytes(4).toString('hex')}`;
}

/** Runs a mutation with a fresh request id; returns the named field's result and the request id. */
async function mutate(label: string, query: string, variables: Record<string, unknown>, field: string): Promise<{ result: any; requestId: string }> {
  const requestId = newRequestId(label);
  const res = await gqlWithRequestId(query, variables, requestId);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  expect(res.headers.get('x-request-id')).toBe(requestId);
  return { result: res.body.data[field], requestId };
}

async function entriesFor(requestId: string) {
  return api.prisma.auditEntry.findMany({ where: { requestId }, orderBy: { action: 'asc' } });
}

/** Expects the request to have appended exactly one entry, by the owner, matching `expected`; returns it. */
async function expectOneEntry(requestId: string, expected: { action: string; targetType: string; targetId: string; details: unknown }) {
  const entries = await entriesFor(requestId);
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ actor: ownerActor, requestId, ...expected });
  return entries[0]!;
}

const registerMutation = `mutation($input: RegisterOrgInput!) {
  registerOrg(input: $input) { __typename ... on RegisterOrgSuccess { org { id alias } } ${errorFields} }
}`;
const updateMutation = `mutation($alias: String!, $patch: UpdateOrgInput!) {
  updateOrg(alias: $alias, patch: $patch) { __typename ... on UpdateOrgSuccess { org { id alias } } ${errorFields} }
}`;
const rotateMutation = `mutation($alias: String!, $credentials: OrgCredentialsInput!) {
  rotateOrgCredentials(alias: $alias, credentials: $credentials) { __typename ... on RotateOrgCredentialsSuccess { org { id } } ${errorFields} }
}`;
const removeMutation = `mutation($alias: String!) {
  removeOrg(alias: $alias) { __typename ... on RemoveOrgSuccess { removed { id alias } } ${errorFields} }
}`;
const createTokenMutation = `mutation($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { __typename ... on CreateApiTokenSuccess { created { token apiToken { id name role } } } ${errorFields} }
}`;
const revokeTokenMutation = `mutation($id: ID!) {
  revokeApiToken(id: $id) { __typename ... on RevokeApiTokenSuccess { apiToken { id revokedAt } } ${errorFields} }
}`;
const auditQuery = `query Audit($first: Int, $after: String, $last: Int, $before: String) {
  auditEntries(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id actor action targetType targetId details requestId createdAt } }
  }
}`;

const credentialCanaries: string[] = [];
const tokenSecrets: string[] = [];
/** Request ids of the successful mutations, in the order they were sent. */
const sentRequestIds: string[] = [];

describe('audit entries of org mutations', () => {
  let orgId: string;

  it('registerOrg appends org.register and org.credentials.write', async () => {
    const refreshToken = canary('RT');
    const clientSecret = canary('CS');
    credentialCanaries.push(refreshToken, clientSecret);
    const { result, requestId } = await mutate(
      'register',
      registerMutation,
      {
        input: {
          alias: 'audited-org',
          kind: 'SANDBOX',
          credentials: { instanceUrl: 'https://audited.my.salesforce.com', refreshToken, clientId: 'app', clientSecret },
        },
      },
      'registerOrg',
    );
    expect(result.__typename).toBe('RegisterOrgSuccess');
    sentRequestIds.push(requestId);
    orgId = (await api.prisma.org.findUniqueOrThrow({ where: { alias: 'audited-org' } })).id;

    const entries = await entriesFor(requestId);
    expect(entries.map((e) => e.action)).toEqual(['org.credentials.write', 'org.register']);
    for (const entry of entries) {
      expect(entry).toMatchObject({ actor: ownerActor, targetType: 'Org', targetId: orgId, requestId });
    }
    expect(entries[1]!.details).toEqual({ alias: 'audited-org', kind: 'SANDBOX' });
    expect(entries[0]!.details).toEqual({ secretStore: 'builtin' });
  });

  it('updateOrg appends org.update with the changes', async () => {
    const { result, requestId } = await mutate('update', updateMutation, { alias: 'audited-org', patch: { alias: 'audited-renamed', isDevHub: true } }, 'updateOrg');
    expect(result.__typename).toBe('UpdateOrgSuccess');
    sentRequestIds.push(requestId);
    await expectOneEntry(requestId, { action: 'org.update', targetType: 'Org', targetId: orgId, details: { alias: 'audited-renamed', isDevHub: true } });
  });

  it('rotateOrgCredentials appends org.credentials.write', async () => {
    const refreshToken = canary('RR');
    const authSecret = canary('RS');
    credentialCanaries.push(refreshToken, authSecret);
    const { result, requestId } = await mutate(
      'rotate',
      rotateMutation,
      { alias: 'audited-renamed', credentials: { sfdxAuthUrl: `force://app:${authSecret}:${refreshToken}@audited.my.salesforce.com` } },
      'rotateOrgCredentials',
    );
    expect(result.__typename).toBe('RotateOrgCredentialsSuccess');
    sentRequestIds.push(requestId);
    await expectOneEntry(requestId, { action: 'org.credentials.write', targetType: 'Org', targetId: orgId, details: { secretStore: 'builtin', rotated: true } });
  });

  it('removeOrg appends org.remove', async () => {
    const { result, requestId } = await mutate('remove', removeMutation, { alias: 'audited-renamed' }, 'removeOrg');
    expect(result).toMatchObject({ __typename: 'RemoveOrgSuccess', removed: { id: orgId } });
    sentRequestIds.push(requestId);
    await expectOneEntry(requestId, { action: 'org.remove', targetType: 'Org', targetId: orgId, details: { alias: 'audited-renamed' } });
  });

  it('failed mutations append nothing', async () => {
    const before = await api.prisma.auditEntry.count();
    const rejectedToken = canary('RJ');
    credentialCanaries.push(rejectedToken);
    await mutate('bad-creds', registerMutation, { input: { alias: 'x-org', kind: 'SANDBOX', credentials: { instanceUrl: 'http://x.example.com', refreshToken: rejectedToken } } }, 'registerOrg');
    await mutate('bad-alias', registerMutation, { input: { alias: '!', kind: 'SANDBOX', credentials: { instanceUrl: 'https://x.my.salesforce.com', refreshToken: rejectedToken } } }, 'registerOrg');
    await mutate('missing-update', updateMutation, { alias: 'no-such-org', patch: { isDevHub: true } }, 'updateOrg');
    await mutate('missing-rotate', rotateMutation, { alias: 'no-such-org', credentials: { instanceUrl: 'https://x.my.salesforce.com', refreshToken: rejectedToken } }, 'rotateOrgCredentials');
    await mutate('missing-remove', removeMutation, { alias: 'no-such-org' }, 'removeOrg');
    expect(await api.prisma.auditEntry.count()).toBe(before);
  });

  it('records a server-made request id when the given X-Request-Id is unusable', async () => {
    const res = await gqlWithRequestId(
      registerMutation,
      { input: { alias: 'generated-id-org', kind: 'DEVELOPER', credentials: { instanceUrl: 'https://gen.my.salesforce.com', refreshToken: 'r1' } } },
      'not a valid id!',
    );
    expect(res.body.data.registerOrg.__typename).toBe('RegisterOrgSuccess');
    const generated = res.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    sentRequestIds.push(generated!);
    const entries = await entriesFor(generated!);
    expect(entries.map((e) => e.action)).toEqual(['org.credentials.write', 'org.register']);
  });
});

describe('audit entries of schedule mutations', () => {
  it('scheduleTask appends schedule.create and removeSchedule schedule.remove, with what the schedule runs where', async () => {
    const registered = await mutate('sched-org', registerMutation, {
      input: { alias: 'audited-sched', kind: 'SANDBOX', credentials: { instanceUrl: 'https://auditedsched.my.salesforce.com', refreshToken: canary('RT') } },
    }, 'registerOrg');
    expect(registered.result.__typename).toBe('RegisterOrgSuccess');
    const created = await mutate('sched-create', `mutation($input: ScheduleTaskInput!) { scheduleTask(input: $input) { __typename ... on ScheduleTaskSuccess { schedule { id } } ${errorFields} } }`, {
      input: { type: 'ORG_CHECK', org: 'audited-sched', cron: '0 4 * * 1', timezone: 'Europe/Paris' },
    }, 'scheduleTask');
    expect(created.result.__typename).toBe('ScheduleTaskSuccess');
    sentRequestIds.push(created.requestId);
    const scheduleId = (await api.prisma.schedule.findFirstOrThrow({ where: { org: { alias: 'audited-sched' } } })).id;
    const details = { type: 'ORG_CHECK', org: 'audited-sched', cron: '0 4 * * 1', timezone: 'Europe/Paris' };
    await expectOneEntry(created.requestId, { action: 'schedule.create', targetType: 'Schedule', targetId: scheduleId, details });

    const removed = await mutate('sched-remove', `mutation($id: ID!) { removeSchedule(id: $id) { __typename ${errorFields} } }`, { id: created.result.schedule.id }, 'removeSchedule');
    expect(removed.result.__typename).toBe('RemoveScheduleSuccess');
    sentRequestIds.push(removed.requestId);
    await expectOneEntry(removed.requestId, { action: 'schedule.remove', targetType: 'Schedule', targetId: scheduleId, details });
    // Removing it again is SCHEDULE_NOT_FOUND, and audited no more.
    const again = await mutate('sched-remove-again', `mutation($id: ID!) { removeSchedule(id: $id) { __typename ${errorFields} } }`, { id: created.result.schedule.id }, 'removeSchedule');
    expect(again.result).toMatchObject({ __typename: 'NotFoundError', code: 'SCHEDULE_NOT_FOUND' });
    expect(await entriesFor(again.requestId)).toEqual([]);
  });
});

describe('audit entries of token mutations', () => {
  let tokenId: string;

  it('createApiToken appends token.create without the token itself', async () => {
    const { result, requestId } = await mutate('token-create', createTokenMutation, { input: { name: 'ci', role: 'APPLICATION', userName: 'ci-bot' } }, 'createApiToken');
    expect(result.__typename).toBe('CreateApiTokenSuccess');
    sentRequestIds.push(requestId);
    tokenSecrets.push(result.created.token);
    tokenId = (await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci' } })).id;
    const entry = await expectOneEntry(requestId, {
      action: 'token.create',
      targetType: 'ApiToken',
      targetId: tokenId,
      details: { name: 'ci', role: 'APPLICATION', user: 'ci-bot' },
    });
    expect(JSON.stringify(entry)).not.toContain(result.created.token);
  });

  it('revokeApiToken appends token.revoke once', async () => {
    const { result, requestId } = await mutate('token-revoke', revokeTokenMutation, { id: tokenId }, 'revokeApiToken');
    expect(result.__typename).toBe('RevokeApiTokenSuccess');
    sentRequestIds.push(requestId);
    await expectOneEntry(requestId, { action: 'token.revoke', targetType: 'ApiToken', targetId: tokenId, details: { name: 'ci' } });

    // Revoking again changes nothing, so it is not audited.
    const before = await api.prisma.auditEntry.count();
    const again = await mutate('token-revoke-again', revokeTokenMutation, { id: tokenId }, 'revokeApiToken');
    expect(again.result.__typename).toBe('RevokeApiTokenSuccess');
    expect(await api.prisma.auditEntry.count()).toBe(before);
  });

  it('tokens made at the CLI are audited with actor "cli" and no request id', async () => {
    const secret = await api.token('VIEWER', { name: 'cli-made' });
    tokenSecrets.push(secret);
    const token = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'cli-made' } });
    const entries = await api.prisma.auditEntry.findMany({ where: { targetId: token.id } });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: 'cli', action: 'token.create', targetType: 'ApiToken', requestId: null });
  });
});

describe('auditEntries query', () => {
  it('lists every entry newest first', async () => {
    const res = await gqlWithRequestId(auditQuery, { first: 100 }, newRequestId('list'));
    expect(res.body.errors).toBeUndefined();
    const { totalCount, edges } = res.body.data.auditEntries;
    const rows = await api.prisma.auditEntry.findMany();
    expect(totalCount).toBe(rows.length);
    expect(edges).toHaveLength(rows.length);
    expect(new Set(edges.map((e: any) => e.node.id)).size).toBe(rows.length);

    const times = edges.map((e: any) => Date.parse(e.node.createdAt));
    for (let i = 1; i < times.length; i++) expect(times[i]).toBeLessThanOrEqual(times[i - 1]);

    // The mutations sent one after another appear in reverse order.
    const firstPosition = (requestId: string) => edges.findIndex((e: any) => e.node.requestId === requestId);
    const positions = sentRequestIds.map(firstPosition);
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => b - a)).toEqual(positions);

    // The entries carry global ids that node(id:) resolves.
    const newest = edges[0].node;
    const node = await gqlWithRequestId('query($id: ID!) { node(id: $id) { __typename ... on AuditEntry { action targetId } } }', { id: newest.id }, newRequestId('node'));
    expect(node.body.data.node).toEqual({ __typename: 'AuditEntry', action: newest.action, targetId: newest.targetId });
  });

  it('pages with first/after and last/before', async () => {
    const all = (await gqlWithRequestId(auditQuery, { first: 100 }, newRequestId('all'))).body.data.auditEntries;
    const ids = all.edges.map((e: any) => e.node.id);
    expect(ids.length).toBeGreaterThanOrEqual(8);

    const forward: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const page: any = (await gqlWithRequestId(auditQuery, { first: 3, after }, newRequestId('fwd'))).body.data.auditEntries;
      expect(page.totalCount).toBe(ids.length);
      forward.push(...page.edges.map((e: any) => e.node.id));
      pages += 1;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
      expect(pages).toBeLessThan(50);
    }
    expect(forward).toEqual(ids);
    expect(pages).toBe(Math.ceil(ids.length / 3));

    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const page: any = (await gqlWithRequestId(auditQuery, { last: 4, before }, newRequestId('back'))).body.data.auditEntries;
      backward.unshift(...page.edges.map((e: any) => e.node.id));
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
      expect(backward.length).toBeLessThan(200);
    }
    expect(backward).toEqual(ids);
  });

  it('is OWNER only: MEMBER, VIEWER and APPLICATION get FORBIDDEN, no token gets UNAUTHENTICATED', async () => {
    for (const role of ['MEMBER', 'VIEWER', 'APPLICATION'] as const) {
      const token = await api.token(role);
      const res = await api.gql('{ auditEntries(first: 5) { totalCount edges { node { action details } } } }', {}, token);
      expect(res.body.data ?? null).toBeNull();
      expect(res.body.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    }
    const anonymous = await api.gql('{ auditEntries(first: 5) { totalCount } }', {}, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('does not hand entries to a MEMBER through node(id:)', async () => {
    const entry = await api.prisma.auditEntry.findFirstOrThrow({ where: { action: 'org.register' } });
    const member = await api.token('MEMBER');
    const res = await api.gql(
      'query($id: ID!) { node(id: $id) { ... on AuditEntry { action details } } }',
      { id: encodeGlobalID('AuditEntry', entry.id) },
      member,
    );
    expect(res.body.data?.node ?? null).toBeNull();
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(res.body)).not.toContain('audited-org');
  });

  it('never records credentials or token secrets in details', async () => {
    expect(credentialCanaries.length).toBeGreaterThanOrEqual(5);
    expect(tokenSecrets.length).toBeGreaterThanOrEqual(2);
    const viaApi = JSON.stringify((await gqlWithRequestId(auditQuery, { first: 100 }, newRequestId('scan'))).body);
    const viaDb = JSON.stringify(await api.prisma.auditEntry.findMany());
    expect(viaDb).toContain('org.credentials.write');
    for (const value of [...credentialCanaries, ...tokenSecrets]) {
      expect(viaApi).not.toContain(value);
      expect(viaDb).not.toContain(value);
    }
    for (const entry of await api.prisma.auditEntry.findMany()) {
      const keys = Object.keys((entry.details ?? {}) as object);
      for (const key of keys) expect(key).not.toMatch(/token$|secret$|password|authUrl/i);
    }
  });
});
