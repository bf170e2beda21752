// Authentication and authorisation as a client sees them: bearer tokens over real HTTP, the role table
// applied to every query and mutation, and what (nothing) a refused request changes in Postgres and Redis.
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { errorFields, startTestApi, testDatabaseUrl, type GraphQLResponse, type TestApi } from './support/harness.js';
import { waitFor } from './support/worker-harness.js';

type Role = 'OWNER' | 'MEMBER' | 'VIEWER' | 'APPLICATION';
const roles: Role[] = ['OWNER', 'MEMBER', 'VIEWER', 'APPLICATION'];
const everyone: Role[] = roles;

// The contract, written out here rather than read from src/domain/auth/permissions.ts, so a wrong entry
// there shows up as a failing test.
const expectedPermissions: Record<Role, string[]> = {
  OWNER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks', 'manageOrgs', 'manageTokens', 'readAudit'],
  MEMBER: ['read', 'submitTasks', 'cancelTasks', 'retryTasks'],
  VIEWER: ['read'],
  APPLICATION: ['read', 'submitTasks', 'cancelTasks'],
};

const queryAccess: Record<string, Role[]> = {
  viewer: everyone,
  orgs: everyone,
  org: everyone,
  node: everyone,
  nodes: everyone,
  tasks: everyone,
  task: everyone,
  apiTokens: ['OWNER'],
  auditEntries: ['OWNER'],
};

const mutationAccess: Record<string, Role[]> = {
  registerOrg: ['OWNER'],
  updateOrg: ['OWNER'],
  rotateOrgCredentials: ['OWNER'],
  removeOrg: ['OWNER'],
  submitTask: ['OWNER', 'MEMBER', 'APPLICATION'],
  cancelTask: ['OWNER', 'MEMBER', 'APPLICATION'],
  retryTask: ['OWNER', 'MEMBER'],
  createApiToken: ['OWNER'],
  revokeApiToken: ['OWNER'],
};

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const tokenPattern = /^syt_[A-Za-z0-9_-]{43}$/;
const execFileAsync = promisify(execFile);

let api: TestApi;
/** One token per role, used by the role matrix. */
const tokens = {} as Record<Role, string>;
const baseAlias = 'base-org';
let baseOrgGid: string;
let baseTaskGid: string;
let auditEntryGid: string;
let ownerTokenGid: string;

/** `Task.requestedBy` / `AuditEntry.actor` of the matrix token of a role. */
function actorOf(role: Role): string {
  return `${role.toLowerCase()}-user/matrix-${role.toLowerCase()}`;
}

function inAnHour(): string {
  return new Date(Date.now() + 3_600_000).toISOString();
}

async function registerFixtureOrg(alias: string) {
  return api.services.orgs.register(cliPrincipal, {
    alias,
    kind: 'SANDBOX',
    credentials: { instanceUrl: `https://${alias}.sandbox.my.salesforce.com`, refreshToken: `5Aep861_${alias}_refresh` },
  });
}

/** A task that waits (SCHEDULED, an hour out) so nothing picks it up while a test looks at it. */
async function scheduledTask() {
  return api.services.tasks.submit(cliPrincipal, { type: 'ORG_CHECK', org: baseAlias, runAt: new Date(Date.now() + 3_600_000) });
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: GraphQLResponse['body'];
}

/** POST /graphql with exactly the headers given (api.gql only knows well-formed Bearer tokens). */
async function post(
  query: string,
  headers: Record<string, string> = {},
  variables: Record<string, unknown> = {},
  operationName?: string,
): Promise<RawResponse> {
  const response = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify({ query, variables, operationName }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse['body'] };
}

function codes(res: { body: GraphQLResponse['body'] }): unknown[] {
  return (res.body.errors ?? []).map((e) => e.extensions?.code);
}

function expectForbidden(res: { status: number; body: GraphQLResponse['body'] }, field: string): void {
  expect(res.status).toBe(200);
  const errors = res.body.errors ?? [];
  expect(errors.length).toBeGreaterThan(0);
  expect(errors.map((e) => [e.extensions?.code, e.path?.[0]])).toContainEqual(['FORBIDDEN', field]);
  expect(codes(res).every((code) => code === 'FORBIDDEN')).toBe(true);
  // The refused root field is non-null or nulled: either way no data comes back for it.
  expect(res.body.data?.[field as keyof typeof res.body.data] ?? null).toBeNull();
}

function expectUnauthenticated(res: RawResponse): void {
  expect(res.status).toBe(401);
  expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect(res.body.data ?? null).toBeNull();
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
}

/** Everything a request could change, except ApiToken.lastUsedAt (bumped by any successful authentication). */
async function stateSnapshot(): Promise<string> {
  const p = api.prisma;
  const byId = { orderBy: { id: 'asc' as const } };
  const [orgs, tasks, events, users, apiTokens, audit, secrets] = await Promise.all([
    p.org.findMany(byId),
    p.task.findMany(byId),
    p.taskEvent.findMany(byId),
    p.user.findMany(byId),
    p.apiToken.findMany({ ...byId, omit: { lastUsedAt: true } }),
    p.auditEntry.findMany(byId),
    p.secret.findMany(byId),
  ]);
  const jobs = await Promise.all(
    (['CRITICAL', 'NORMAL', 'BATCH'] as const).map(async (q) => {
      const queue = api.queues.get(q);
      const all = await queue.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'waiting-children']);
      return all.map((job) => `${q}:${job.id}`).sort();
    }),
  );
  return JSON.stringify({ orgs, tasks, events, users, apiTokens, audit, secrets, jobs }, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}

beforeAll(async () => {
  api = await startTestApi('auth');
  for (const role of roles) tokens[role] = await api.token(role, { name: `matrix-${role.toLowerCase()}` });
  const org = await registerFixtureOrg(baseAlias);
  baseOrgGid = encodeGlobalID('Org', org.id);
  baseTaskGid = encodeGlobalID('Task', (await scheduledTask()).id);
  const entry = await api.prisma.auditEntry.findFirstOrThrow({ where: { action: 'org.register', targetId: org.id } });
  auditEntryGid = encodeGlobalID('AuditEntry', entry.id);
  const ownerRow = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'matrix-owner' } });
  ownerTokenGid = encodeGlobalID('ApiToken', ownerRow.id);
  // Use every token once, so the lastUsedAt bookkeeping write is done before the matrix compares states.
  for (const role of roles) expect((await api.gql('{ viewer { role } }', {}, tokens[role])).status).toBe(200);
  await waitFor(async () => ((await api.prisma.apiToken.count({ where: { name: { startsWith: 'matrix-' }, lastUsedAt: null } })) === 0 ? true : null));
});

afterAll(async () => {
  await api?.close();
});

describe('queries, by role', () => {
  interface QueryCase {
    query: string;
    variables?: () => Record<string, unknown>;
    check: (data: any, role: Role) => Promise<void> | void;
  }

  const cases: Record<string, QueryCase> = {
    viewer: {
      query: '{ viewer { role userName } }',
      check: (data, role) => expect(data.viewer).toEqual({ role, userName: `${role.toLowerCase()}-user` }),
    },
    orgs: {
      query: '{ orgs(first: 100) { totalCount edges { node { id alias } } } }',
      check: async (data) => {
        expect(data.orgs.totalCount).toBe(await api.prisma.org.count());
        expect(data.orgs.edges.map((e: any) => e.node)).toContainEqual({ id: baseOrgGid, alias: baseAlias });
      },
    },
    org: {
      query: 'query($alias: String!) { org(alias: $alias) { id alias kind } }',
      variables: () => ({ alias: baseAlias }),
      check: (data) => expect(data.org).toEqual({ id: baseOrgGid, alias: baseAlias, kind: 'SANDBOX' }),
    },
    node: {
      query: 'query($id: ID!) { node(id: $id) { __typename id ... on Org { alias } } }',
      variables: () => ({ id: baseOrgGid }),
      check: (data) => expect(data.node).toEqual({ __typename: 'Org', id: baseOrgGid, alias: baseAlias }),
    },
    nodes: {
      query: 'query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }',
      variables: () => ({ ids: [baseOrgGid, baseTaskGid] }),
      check: (data) =>
        expect(data.nodes).toEqual([
          { __typename: 'Org', id: baseOrgGid },
          { __typename: 'Task', id: baseTaskGid },
        ]),
    },
    tasks: {
      query: '{ tasks(first: 100) { totalCount edges { node { id orgAlias } } } }',
      check: async (data) => {
        const count = await api.prisma.task.count();
        expect(count).toBeGreaterThan(0);
        expect(data.tasks.totalCount).toBe(count);
        expect(data.tasks.edges.map((e: any) => e.node.id)).toContain(baseTaskGid);
      },
    },
    task: {
      query: 'query($id: ID!) { task(id: $id) { id orgAlias status } }',
      variables: () => ({ id: baseTaskGid }),
      check: (data) => expect(data.task).toEqual({ id: baseTaskGid, orgAlias: baseAlias, status: 'SCHEDULED' }),
    },
    apiTokens: {
      query: '{ apiTokens(first: 100) { totalCount edges { node { id name prefix role } } } }',
      check: async (data) => {
        expect(data.apiTokens.totalCount).toBe(await api.prisma.apiToken.count());
        const names = data.apiTokens.edges.map((e: any) => e.node.name);
        for (const role of roles) expect(names).toContain(`matrix-${role.toLowerCase()}`);
      },
    },
    auditEntries: {
      query: '{ auditEntries(first: 100) { totalCount edges { node { action actor targetType } } } }',
      check: async (data) => {
        const count = await api.prisma.auditEntry.count();
        expect(count).toBeGreaterThan(0);
        expect(data.auditEntries.totalCount).toBe(count);
        expect(data.auditEntries.edges.map((e: any) => e.node)).toContainEqual({ action: 'org.register', actor: 'cli', targetType: 'Org' });
      },
    },
  };

  it('tests query fields that exist in the schema', async () => {
    const res = await api.gql('{ __schema { queryType { fields { name } } } }');
    const fields = res.body.data.__schema.queryType.fields.map((f: { name: string }) => f.name);
    expect(fields).toEqual(expect.arrayContaining(Object.keys(queryAccess)));
    expect(Object.keys(cases).sort()).toEqual(Object.keys(queryAccess).sort());
  });

  for (const [field, allowed] of Object.entries(queryAccess)) {
    for (const role of roles) {
      const permitted = allowed.includes(role);
      it(`${field} as ${role} is ${permitted ? 'allowed' : 'FORBIDDEN'}`, async () => {
        const c = cases[field]!;
        const before = await stateSnapshot();
        const res = await api.gql(c.query, c.variables?.() ?? {}, tokens[role]);
        if (permitted) {
          expect(res.status).toBe(200);
          expect(res.body.errors).toBeUndefined();
          await c.check(res.body.data, role);
        } else {
          expectForbidden(res, field);
          expect(res.body.data ?? null).toBeNull();
        }
        expect(await stateSnapshot()).toBe(before);
      });
    }
  }
});

describe('nodes of restricted types', () => {
  it('node() does not reveal audit entries to roles without readAudit', async () => {
    const query = 'query($id: ID!) { node(id: $id) { id ... on AuditEntry { action actor } } }';
    const owner = await api.gql(query, { id: auditEntryGid }, tokens.OWNER);
    expect(owner.body.errors).toBeUndefined();
    expect(owner.body.data.node).toEqual({ id: auditEntryGid, action: 'org.register', actor: 'cli' });
    for (const role of ['MEMBER', 'VIEWER', 'APPLICATION'] as const) {
      const res = await api.gql(query, { id: auditEntryGid }, tokens[role]);
      expect(codes(res)).toContain('FORBIDDEN');
      expect(res.body.data?.node ?? null).toBeNull();
      expect(JSON.stringify(res.body)).not.toContain('org.register');
    }
  });

  it("node() does not reveal other people's API tokens to roles without manageTokens", async () => {
    const query = 'query($id: ID!) { node(id: $id) { id ... on ApiToken { name prefix userName } } }';
    const ownerRow = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'matrix-owner' } });
    const owner = await api.gql(query, { id: ownerTokenGid }, tokens.OWNER);
    expect(owner.body.data.node).toEqual({ id: ownerTokenGid, name: 'matrix-owner', prefix: ownerRow.prefix, userName: 'owner-user' });
    for (const role of ['MEMBER', 'VIEWER', 'APPLICATION'] as const) {
      const res = await api.gql(query, { id: ownerTokenGid }, tokens[role]);
      expect(codes(res)).toContain('FORBIDDEN');
      expect(res.body.data?.node ?? null).toBeNull();
      expect(JSON.stringify(res.body)).not.toContain(ownerRow.prefix);
      expect(JSON.stringify(res.body)).not.toContain('matrix-owner');
    }
  });

  it('every role sees its own token through viewer.token', async () => {
    for (const role of roles) {
      const row = await api.prisma.apiToken.findFirstOrThrow({ where: { name: `matrix-${role.toLowerCase()}` } });
      const res = await api.gql('{ viewer { token { id name prefix role } } }', {}, tokens[role]);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.viewer.token).toEqual({ id: encodeGlobalID('ApiToken', row.id), name: row.name, prefix: row.prefix, role });
    }
  });
});

describe('node(id:) and nodes(ids:) with ids that name nothing', () => {
  const NODE = 'query($id: ID!) { node(id: $id) { __typename id } }';
  const NODES = 'query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }';
  const globalId = (text: string) => Buffer.from(text).toString('base64');
  const missing = (typename: string) => encodeGlobalID(typename, randomUUID());

  it('answers null for a well-formed id of an object that does not exist, whatever its type', async () => {
    for (const typename of ['Org', 'Task', 'ApiToken', 'AuditEntry', 'Schedule', 'Artifact']) {
      const res = await api.gql(NODE, { id: missing(typename) }, tokens.OWNER);
      expect(res.body.errors, typename).toBeUndefined();
      expect(res.body.data.node, typename).toBeNull();
    }
  });

  it('takes at most 100 ids in nodes(ids:), and looks each up once however often it is given', async () => {
    const tooMany = await api.gql(NODES, { ids: Array(101).fill(baseOrgGid) }, tokens.OWNER);
    expect(tooMany.body.errors).toHaveLength(1);
    expect(tooMany.body.errors![0]).toMatchObject({ extensions: { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['ids'], message: 'must hold at most 100 ids' }] } });
    const repeated = await api.gql(NODES, { ids: [baseOrgGid, baseTaskGid, baseOrgGid] }, tokens.OWNER);
    expect(repeated.body.errors).toBeUndefined();
    expect(repeated.body.data.nodes).toEqual([{ __typename: 'Org', id: baseOrgGid }, { __typename: 'Task', id: baseTaskGid }, { __typename: 'Org', id: baseOrgGid }]);
  });

  it('nulls only the missing entries of nodes(ids:)', async () => {
    const ids = [baseOrgGid, missing('Task'), baseTaskGid, missing('AuditEntry'), missing('ApiToken')];
    const res = await api.gql(NODES, { ids }, tokens.OWNER);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.nodes).toEqual([
      { __typename: 'Org', id: baseOrgGid },
      null,
      { __typename: 'Task', id: baseTaskGid },
      null,
      null,
    ]);
  });

  it.each([
    ['a global id with a non-UUID', () => globalId('Task:0')],
    ['an audit entry id with a number', () => globalId('AuditEntry:1')],
    ['garbage', () => 'nope'],
    ['a type that is not a Node', () => globalId(`TaskEvent:${randomUUID()}`)],
    ['a type that does not exist', () => globalId(`Nothing:${randomUUID()}`)],
  ])('rejects %s as a validation error at its argument', async (_label, id) => {
    const single = await api.gql(NODE, { id: id() }, tokens.OWNER);
    expect(single.body.data?.node ?? null).toBeNull();
    expect(single.body.errors).toHaveLength(1);
    expect(single.body.errors![0]).toMatchObject({
      path: ['node'],
      extensions: { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['id'], message: expect.any(String) }] },
    });
    expect(single.body.errors![0]!.message).not.toContain(id());

    const list = await api.gql(NODES, { ids: [baseOrgGid, id()] }, tokens.OWNER);
    expect(list.body.data?.nodes ?? null).toBeNull();
    expect(list.body.errors).toHaveLength(1);
    expect(list.body.errors![0]).toMatchObject({
      path: ['nodes'],
      extensions: { code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['ids', '1'], message: expect.any(String) }] },
    });
  });

  it('still refuses an existing audit entry to a role without readAudit, next to a missing one', async () => {
    const res = await api.gql(NODES, { ids: [missing('AuditEntry'), auditEntryGid] }, tokens.MEMBER);
    expect(codes(res)).toEqual(['FORBIDDEN']);
    expect(JSON.stringify(res.body)).not.toContain('org.register');
  });
});

describe('mutations, by role', () => {
  interface MutationCase<F> {
    document: string;
    /** A fresh target for this role's attempt. */
    setup(role: Role): Promise<F>;
    variables(fixture: F, role: Role): Record<string, unknown>;
    /** The mutation ran: its typed result and its effect in the database. */
    applied(result: any, fixture: F, role: Role): Promise<void>;
    /** The mutation was refused: its target is as it was (after the whole-state comparison). */
    untouched(fixture: F, role: Role): Promise<void>;
  }
  const defineCase = <F>(c: MutationCase<F>) => c as unknown as MutationCase<unknown>;

  const orgResult = (field: string, success: string) =>
    `${field} { __typename ... on ${success} { org { id alias kind isDevHub instanceUrl status } } ${errorFields} }`;
  const taskResult = (field: string, success: string) =>
    `${field} { __typename ... on ${success} { task { id status } } ${errorFields} }`;

  const cases: Record<string, MutationCase<unknown>> = {
    registerOrg: defineCase({
      document: `mutation($input: RegisterOrgInput!) { ${orgResult('registerOrg(input: $input)', 'RegisterOrgSuccess')} }`,
      setup: async (role) => ({ alias: `reg-${role.toLowerCase()}` }),
      variables: ({ alias }) => ({
        input: { alias, kind: 'PRODUCTION', credentials: { instanceUrl: 'https://reg.my.salesforce.com', refreshToken: '5Aep_registered' } },
      }),
      applied: async (result, { alias }, role) => {
        expect(result.__typename).toBe('RegisterOrgSuccess');
        expect(result.org).toMatchObject({ alias, kind: 'PRODUCTION', instanceUrl: 'https://reg.my.salesforce.com', status: 'UNVERIFIED' });
        const row = await api.prisma.org.findUniqueOrThrow({ where: { alias } });
        expect(encodeGlobalID('Org', row.id)).toBe(result.org.id);
        expect(await api.services.secrets.get(row.secretRef)).toMatchObject({ refreshToken: '5Aep_registered' });
        expect(await api.prisma.auditEntry.count({ where: { action: 'org.register', targetId: row.id, actor: actorOf(role) } })).toBe(1);
      },
      untouched: async ({ alias }) => {
        expect(await api.prisma.org.findUnique({ where: { alias } })).toBeNull();
      },
    }),

    updateOrg: defineCase({
      document: `mutation($alias: String!, $patch: UpdateOrgInput!) { ${orgResult('updateOrg(alias: $alias, patch: $patch)', 'UpdateOrgSuccess')} }`,
      setup: async (role) => registerFixtureOrg(`upd-${role.toLowerCase()}`),
      variables: (org) => ({ alias: org.alias, patch: { kind: 'PRODUCTION', isDevHub: true } }),
      applied: async (result, org) => {
        expect(result.__typename).toBe('UpdateOrgSuccess');
        expect(result.org).toMatchObject({ alias: org.alias, kind: 'PRODUCTION', isDevHub: true });
        expect(await api.prisma.org.findUniqueOrThrow({ where: { id: org.id } })).toMatchObject({ kind: 'PRODUCTION', isDevHub: true });
      },
      untouched: async (org) => {
        expect(await api.prisma.org.findUniqueOrThrow({ where: { id: org.id } })).toEqual(org);
      },
    }),

    rotateOrgCredentials: defineCase({
      document: `mutation($alias: String!, $credentials: OrgCredentialsInput!) { ${orgResult(
        'rotateOrgCredentials(alias: $alias, credentials: $credentials)',
        'RotateOrgCredentialsSuccess',
      )} }`,
      setup: async (role) => {
        const org = await registerFixtureOrg(`rot-${role.toLowerCase()}`);
        const connected = await api.prisma.org.update({ where: { id: org.id }, data: { status: 'CONNECTED' } });
        return { org: connected, secret: await api.prisma.secret.findUniqueOrThrow({ where: { name: org.secretRef } }) };
      },
      variables: ({ org }) => ({
        alias: org.alias,
        credentials: { instanceUrl: 'https://rotated.my.salesforce.com', refreshToken: '5Aep_rotated' },
      }),
      applied: async (result, { org, secret }) => {
        expect(result.__typename).toBe('RotateOrgCredentialsSuccess');
        expect(result.org).toMatchObject({ alias: org.alias, instanceUrl: 'https://rotated.my.salesforce.com', status: 'UNVERIFIED' });
        const stored = await api.prisma.secret.findUniqueOrThrow({ where: { name: org.secretRef } });
        expect(stored.version).toBe(secret.version + 1);
        expect(await api.services.secrets.get(org.secretRef)).toMatchObject({ refreshToken: '5Aep_rotated' });
      },
      untouched: async ({ org, secret }) => {
        expect(await api.prisma.org.findUniqueOrThrow({ where: { id: org.id } })).toEqual(org);
        expect(await api.prisma.secret.findUniqueOrThrow({ where: { name: org.secretRef } })).toEqual(secret);
        expect(await api.services.secrets.get(org.secretRef)).toMatchObject({ refreshToken: `5Aep861_${org.alias}_refresh` });
      },
    }),

    removeOrg: defineCase({
      document: `mutation($alias: String!) { removeOrg(alias: $alias) { __typename ... on RemoveOrgSuccess { removed { id alias } } ${errorFields} } }`,
      setup: async (role) => registerFixtureOrg(`rm-${role.toLowerCase()}`),
      variables: (org) => ({ alias: org.alias }),
      applied: async (result, org) => {
        expect(result.__typename).toBe('RemoveOrgSuccess');
        expect(result.removed.alias).toBe(org.alias);
        expect(await api.prisma.org.findUnique({ where: { id: org.id } })).toBeNull();
        expect(await api.prisma.secret.findUnique({ where: { name: org.secretRef } })).toBeNull();
      },
      untouched: async (org) => {
        expect(await api.prisma.org.findUniqueOrThrow({ where: { id: org.id } })).toEqual(org);
        expect(await api.prisma.secret.findUnique({ where: { name: org.secretRef } })).not.toBeNull();
      },
    }),

    submitTask: defineCase({
      document: `mutation($input: SubmitTaskInput!) { ${taskResult('submitTask(input: $input)', 'SubmitTaskSuccess')} }`,
      setup: async () => ({ runAt: inAnHour() }),
      variables: ({ runAt }) => ({ input: { type: 'ORG_CHECK', org: baseAlias, runAt } }),
      applied: async (result, _fixture, role) => {
        expect(result.__typename).toBe('SubmitTaskSuccess');
        expect(result.task.status).toBe('SCHEDULED');
        const rows = await api.prisma.task.findMany({ where: { requestedBy: actorOf(role) } });
        expect(rows).toHaveLength(1);
        expect(encodeGlobalID('Task', rows[0]!.id)).toBe(result.task.id);
        expect(rows[0]!.jobId).toBeTruthy();
        expect(await api.queues.get(rows[0]!.queue).getJob(rows[0]!.jobId!)).toBeTruthy();
      },
      untouched: async (_fixture, role) => {
        expect(await api.prisma.task.count({ where: { requestedBy: actorOf(role) } })).toBe(0);
      },
    }),

    cancelTask: defineCase({
      document: `mutation($id: ID!) { ${taskResult('cancelTask(id: $id)', 'CancelTaskSuccess')} }`,
      setup: () => scheduledTask(),
      variables: (task) => ({ id: encodeGlobalID('Task', task.id) }),
      applied: async (result, task, role) => {
        expect(result.__typename).toBe('CancelTaskSuccess');
        expect(result.task).toEqual({ id: encodeGlobalID('Task', task.id), status: 'CANCELLED' });
        const row = await api.prisma.task.findUniqueOrThrow({ where: { id: task.id } });
        expect(row.status).toBe('CANCELLED');
        expect(row.errorMessage).toContain(actorOf(role));
        expect(await api.queues.get(task.queue).getJob(task.jobId!)).toBeFalsy();
      },
      untouched: async (task) => {
        expect((await api.prisma.task.findUniqueOrThrow({ where: { id: task.id } })).status).toBe('SCHEDULED');
        expect(await api.queues.get(task.queue).getJob(task.jobId!)).toBeTruthy();
      },
    }),

    retryTask: defineCase({
      document: `mutation($id: ID!) { ${taskResult('retryTask(id: $id)', 'RetryTaskSuccess')} }`,
      setup: async () => api.services.tasks.cancel(cliPrincipal, (await scheduledTask()).id),
      variables: (task) => ({ id: encodeGlobalID('Task', task.id) }),
      applied: async (result, task) => {
        expect(task.status).toBe('CANCELLED');
        expect(result.__typename).toBe('RetryTaskSuccess');
        expect(result.task).toEqual({ id: encodeGlobalID('Task', task.id), status: 'QUEUED' });
        const row = await api.prisma.task.findUniqueOrThrow({ where: { id: task.id } });
        expect(row.status).not.toBe('CANCELLED');
        expect(row.jobId).toBeTruthy();
        expect(row.jobId).not.toBe(task.jobId);
      },
      untouched: async (task) => {
        const row = await api.prisma.task.findUniqueOrThrow({ where: { id: task.id } });
        expect(row.status).toBe('CANCELLED');
        expect(row.jobId).toBe(task.jobId);
      },
    }),

    createApiToken: defineCase({
      document: `mutation($input: CreateApiTokenInput!) {
        createApiToken(input: $input) { __typename ... on CreateApiTokenSuccess { created { token apiToken { id name role } } } ${errorFields} }
      }`,
      setup: async (role) => ({ name: `made-by-${role.toLowerCase()}` }),
      variables: ({ name }) => ({ input: { name, role: 'VIEWER' } }),
      applied: async (result, { name }) => {
        expect(result.__typename).toBe('CreateApiTokenSuccess');
        expect(result.created.token).toMatch(tokenPattern);
        expect(result.created.apiToken).toMatchObject({ name, role: 'VIEWER' });
        expect(await api.prisma.apiToken.count({ where: { name } })).toBe(1);
      },
      untouched: async ({ name }) => {
        expect(await api.prisma.apiToken.count({ where: { name } })).toBe(0);
      },
    }),

    revokeApiToken: defineCase({
      document: `mutation($id: ID!) {
        revokeApiToken(id: $id) { __typename ... on RevokeApiTokenSuccess { apiToken { id name revokedAt } } ${errorFields} }
      }`,
      setup: async (role) => {
        const name = `victim-of-${role.toLowerCase()}`;
        const secret = await api.token('VIEWER', { name });
        return { secret, row: await api.prisma.apiToken.findFirstOrThrow({ where: { name } }) };
      },
      variables: ({ row }) => ({ id: encodeGlobalID('ApiToken', row.id) }),
      applied: async (result, { row, secret }) => {
        expect(result.__typename).toBe('RevokeApiTokenSuccess');
        expect(result.apiToken).toMatchObject({ id: encodeGlobalID('ApiToken', row.id), name: row.name });
        expect(result.apiToken.revokedAt).toEqual(expect.any(String));
        expect((await api.prisma.apiToken.findUniqueOrThrow({ where: { id: row.id } })).revokedAt).not.toBeNull();
        expectUnauthenticated(await api.gql('{ viewer { role } }', {}, secret));
      },
      untouched: async ({ row, secret }) => {
        expect((await api.prisma.apiToken.findUniqueOrThrow({ where: { id: row.id } })).revokedAt).toBeNull();
        const res = await api.gql('{ viewer { role } }', {}, secret);
        expect(res.status).toBe(200);
        expect(res.body.data.viewer.role).toBe('VIEWER');
      },
    }),
  };

  it('tests mutation fields that exist in the schema', async () => {
    const res = await api.gql('{ __schema { mutationType { fields { name } } } }');
    const fields = res.body.data.__schema.mutationType.fields.map((f: { name: string }) => f.name);
    expect(fields).toEqual(expect.arrayContaining(Object.keys(mutationAccess)));
    expect(Object.keys(cases).sort()).toEqual(Object.keys(mutationAccess).sort());
  });

  for (const [field, allowed] of Object.entries(mutationAccess)) {
    for (const role of roles) {
      const permitted = allowed.includes(role);
      it(`${field} as ${role} is ${permitted ? 'allowed' : 'FORBIDDEN and changes nothing'}`, async () => {
        const c = cases[field]!;
        const fixture = await c.setup(role);
        const before = await stateSnapshot();
        const res = await api.gql(c.document, c.variables(fixture, role), tokens[role]);
        if (permitted) {
          expect(res.status).toBe(200);
          expect(res.body.errors).toBeUndefined();
          await c.applied(res.body.data[field], fixture, role);
          expect(await stateSnapshot()).not.toBe(before);
        } else {
          expectForbidden(res, field);
          expect(await stateSnapshot()).toBe(before);
          await c.untouched(fixture, role);
        }
      });
    }
  }

  it('an allowed role gets the typed NOT_FOUND result; a refused one learns nothing about the target', async () => {
    const missingTask = encodeGlobalID('Task', randomUUID());
    const probes: Array<{ field: string; document: string; variables: Record<string, unknown>; allowed: Role; refused: Role; code: string }> = [
      {
        field: 'updateOrg',
        document: `mutation($alias: String!) { updateOrg(alias: $alias, patch: { isDevHub: true }) { __typename ${errorFields} } }`,
        variables: { alias: 'no-such-org' },
        allowed: 'OWNER',
        refused: 'MEMBER',
        code: 'ORG_NOT_FOUND',
      },
      {
        field: 'removeOrg',
        document: `mutation($alias: String!) { removeOrg(alias: $alias) { __typename ${errorFields} } }`,
        variables: { alias: 'no-such-org' },
        allowed: 'OWNER',
        refused: 'APPLICATION',
        code: 'ORG_NOT_FOUND',
      },
      {
        field: 'submitTask',
        document: `mutation { submitTask(input: { type: ORG_CHECK, org: "no-such-org" }) { __typename ${errorFields} } }`,
        variables: {},
        allowed: 'APPLICATION',
        refused: 'VIEWER',
        code: 'ORG_NOT_FOUND',
      },
      {
        field: 'cancelTask',
        document: `mutation($id: ID!) { cancelTask(id: $id) { __typename ${errorFields} } }`,
        variables: { id: missingTask },
        allowed: 'APPLICATION',
        refused: 'VIEWER',
        code: 'TASK_NOT_FOUND',
      },
      {
        field: 'retryTask',
        document: `mutation($id: ID!) { retryTask(id: $id) { __typename ${errorFields} } }`,
        variables: { id: missingTask },
        allowed: 'MEMBER',
        refused: 'APPLICATION',
        code: 'TASK_NOT_FOUND',
      },
      {
        field: 'revokeApiToken',
        document: `mutation($id: ID!) { revokeApiToken(id: $id) { __typename ${errorFields} } }`,
        variables: { id: encodeGlobalID('ApiToken', randomUUID()) },
        allowed: 'OWNER',
        refused: 'VIEWER',
        code: 'TOKEN_NOT_FOUND',
      },
    ];
    for (const probe of probes) {
      const before = await stateSnapshot();
      const ok = await api.gql(probe.document, probe.variables, tokens[probe.allowed]);
      expect(ok.status).toBe(200);
      expect(ok.body.errors).toBeUndefined();
      expect(ok.body.data[probe.field]).toMatchObject({ __typename: 'NotFoundError', code: probe.code });
      const refused = await api.gql(probe.document, probe.variables, tokens[probe.refused]);
      expectForbidden(refused, probe.field);
      expect(JSON.stringify(refused.body)).not.toContain(probe.code);
      expect(await stateSnapshot()).toBe(before);
    }
  });
});

describe('authentication', () => {
  const viewerQuery = '{ viewer { role } }';

  it('refuses a request without a token with 401 UNAUTHENTICATED', async () => {
    const res = await post(viewerQuery);
    expectUnauthenticated(res);
    expect(res.body.errors?.[0]?.message).toMatch(/Authorization: Bearer/);
  });

  it('refuses malformed credentials with 401 UNAUTHENTICATED', async () => {
    const real = await api.token('OWNER', { name: 'malformed-source' });
    const headers = [
      'Bearer not-a-switchyard-token',
      `Bearer ${real.slice(0, -1)}`, // one character short
      `Bearer ${real}x`, // one character too many
      `Bearer ${real} extra`,
      `Basic ${Buffer.from(`user:${real}`).toString('base64')}`,
      real, // the token without the Bearer scheme
      'Bearer',
      'Bearer ',
    ];
    for (const authorization of headers) {
      const res = await post(viewerQuery, { authorization });
      expectUnauthenticated(res);
      expect(res.body.errors?.[0]?.message).toMatch(/invalid, expired or revoked|Authentication required/);
    }
    // The same token, well-formed, is fine: the refusals above were about the form.
    expect((await post(viewerQuery, { authorization: `Bearer ${real}` })).body.data).toEqual({ viewer: { role: 'OWNER' } });
  });

  it('refuses an unknown (well-formed) token with 401 UNAUTHENTICATED', async () => {
    const unknown = `syt_${randomBytes(32).toString('base64url')}`;
    expect(unknown).toMatch(tokenPattern);
    expectUnauthenticated(await api.gql(viewerQuery, {}, unknown));
  });

  it('refuses mutations without a valid token, and they change nothing', async () => {
    const document = `mutation { registerOrg(input: { alias: "anon-org", kind: SANDBOX, credentials: { instanceUrl: "https://anon.my.salesforce.com", refreshToken: "r" } }) { __typename } }`;
    const before = await stateSnapshot();
    expectUnauthenticated(await post(document));
    expectUnauthenticated(await post(document, { authorization: `Bearer syt_${randomBytes(32).toString('base64url')}` }));
    expect(await stateSnapshot()).toBe(before);
    expect(await api.prisma.org.findUnique({ where: { alias: 'anon-org' } })).toBeNull();
  });

  it('accepts a token until it expires, then refuses it with 401', async () => {
    const token = await api.token('MEMBER', { name: 'short-lived', expiresAt: new Date(Date.now() + 60_000) });
    const before = await api.gql(viewerQuery, {}, token);
    expect(before.status).toBe(200);
    expect(before.body.data).toEqual({ viewer: { role: 'MEMBER' } });
    // Let its expiry pass (set in the database rather than waited for, so a slow machine cannot make the
    // first request above arrive after the expiry).
    await api.prisma.apiToken.updateMany({ where: { name: 'short-lived' }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expectUnauthenticated(await api.gql(viewerQuery, {}, token));
    expectUnauthenticated(await api.gql('{ __schema { queryType { name } } }', {}, token));
    // Expiry is read on every request: moving it back into the future makes the same token work again.
    await api.prisma.apiToken.updateMany({ where: { name: 'short-lived' }, data: { expiresAt: new Date(Date.now() + 60_000) } });
    expect((await api.gql(viewerQuery, {}, token)).status).toBe(200);
  });

  it('refuses a token revoked through revokeApiToken on the very next request', async () => {
    const created = await api.gql(
      `mutation { createApiToken(input: { name: "to-revoke", role: MEMBER }) { ... on CreateApiTokenSuccess { created { token apiToken { id } } } ${errorFields} } }`,
      {},
      tokens.OWNER,
    );
    const { token, apiToken } = created.body.data.createApiToken.created;
    const ok = await api.gql(viewerQuery, {}, token);
    expect(ok.status).toBe(200);
    expect(ok.body.data).toEqual({ viewer: { role: 'MEMBER' } });

    const revoke = `mutation($id: ID!) { revokeApiToken(id: $id) { __typename ... on RevokeApiTokenSuccess { apiToken { revokedAt } } ${errorFields} } }`;
    const revoked = await api.gql(revoke, { id: apiToken.id }, tokens.OWNER);
    expect(revoked.body.data.revokeApiToken.__typename).toBe('RevokeApiTokenSuccess');
    const revokedAt = revoked.body.data.revokeApiToken.apiToken.revokedAt;
    expect(Number.isNaN(Date.parse(revokedAt))).toBe(false);

    expectUnauthenticated(await api.gql(viewerQuery, {}, token));
    expectUnauthenticated(await api.gql('{ __schema { queryType { name } } }', {}, token));

    // Revoking again changes nothing.
    const auditCount = await api.prisma.auditEntry.count();
    const again = await api.gql(revoke, { id: apiToken.id }, tokens.OWNER);
    expect(again.body.data.revokeApiToken).toEqual({ __typename: 'RevokeApiTokenSuccess', apiToken: { revokedAt } });
    expect(await api.prisma.auditEntry.count()).toBe(auditCount);
    expectUnauthenticated(await api.gql(viewerQuery, {}, token));
  });
});

describe('introspection', () => {
  const introspection = '{ __schema { queryType { name } } }';

  it('works without a token', async () => {
    const res = await post(introspection);
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    const viaFragment = await post('query Load { ...Meta } fragment Meta on Query { __type(name: "Org") { name } }');
    expect(viaFragment.status).toBe(200);
    expect(viaFragment.body.data).toEqual({ __type: { name: 'Org' } });
  });

  it('cannot carry a real field past authentication', async () => {
    expectUnauthenticated(await post(`{ __schema { queryType { name } } orgs { totalCount } }`));
    expectUnauthenticated(await post(`query { ...F } fragment F on Query { __typename viewer { role } }`));
    // Two operations: the introspection-only one must not vouch for the one that actually runs.
    expectUnauthenticated(await post('query A { __typename } query B { viewer { role } }', {}, {}, 'B'));
    const onlyA = await post('query A { __typename } query B { viewer { role } }', {}, {}, 'A');
    expect(onlyA.status).toBe(200);
    expect(onlyA.body.data).toEqual({ __typename: 'Query' });
  });

  it('refuses a presented bad token with 401, even for introspection', async () => {
    expectUnauthenticated(await post(introspection, { authorization: 'Bearer nonsense' }));
    expectUnauthenticated(await api.gql(introspection, {}, `syt_${randomBytes(32).toString('base64url')}`));
    const good = await api.gql(introspection, {}, tokens.VIEWER);
    expect(good.status).toBe(200);
    expect(good.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });
});

describe('createApiToken', () => {
  const create = `mutation($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      __typename
      ... on CreateApiTokenSuccess { created { token apiToken { id name role prefix userName lastUsedAt revokedAt expiresAt } } }
      ${errorFields}
    }
  }`;
  let token: string;
  let tokenGid: string;

  beforeAll(async () => {
    const res = await api.gql(create, { input: { name: 'ci-pipeline', role: 'APPLICATION', userName: 'ci-bot' } }, tokens.OWNER);
    expect(res.body.data.createApiToken.__typename).toBe('CreateApiTokenSuccess');
    const { created } = res.body.data.createApiToken;
    token = created.token;
    tokenGid = created.apiToken.id;
    expect(created.apiToken).toEqual({
      id: expect.any(String),
      name: 'ci-pipeline',
      role: 'APPLICATION',
      prefix: token.slice(0, 12),
      userName: 'ci-bot',
      lastUsedAt: null,
      revokedAt: null,
      expiresAt: null,
    });
  });

  it('returns a syt_ token', () => {
    expect(token).toMatch(tokenPattern);
  });

  it('stores only the SHA-256 hash of the token', async () => {
    const rows = await api.prisma.apiToken.findMany({ where: { name: 'ci-pipeline' } });
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(encodeGlobalID('ApiToken', row.id)).toBe(tokenGid);
    expect(row.hash).toBe(createHash('sha256').update(token, 'utf8').digest('hex'));
    const secretPart = token.slice(4);
    for (const value of Object.values(row)) {
      expect(String(value)).not.toContain(secretPart);
      expect(String(value)).not.toContain(token.slice(12));
    }
  });

  it('leaves the plaintext nowhere in a dump of the database', async () => {
    const row = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-pipeline' } });
    const { stdout } = await execFileAsync('pg_dump', ['--data-only', '-n', api.schema, '-d', testDatabaseUrl], {
      maxBuffer: 64 * 1024 * 1024,
    });
    // The dump does hold the token's row (its hash and prefix), so its absence below means something.
    expect(stdout).toContain(row.hash);
    expect(stdout).toContain(row.prefix);
    expect(stdout).toContain('ci-pipeline');
    expect(stdout).not.toContain(token);
    expect(stdout).not.toContain(token.slice(12));
    for (const role of roles) expect(stdout).not.toContain(tokens[role].slice(12));
  });

  it('works immediately with the role it was given, and sets lastUsedAt on use', async () => {
    expect((await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-pipeline' } })).lastUsedAt).toBeNull();
    const usedFrom = Date.now();
    const res = await api.gql('{ viewer { userName role permissions } }', {}, token);
    expect(res.status).toBe(200);
    expect(res.body.data.viewer).toEqual({ userName: 'ci-bot', role: 'APPLICATION', permissions: expect.any(Array) });
    expect([...res.body.data.viewer.permissions].sort()).toEqual([...expectedPermissions.APPLICATION].sort());
    // An APPLICATION token may submit tasks but not manage tokens.
    expectForbidden(await api.gql('{ apiTokens { totalCount } }', {}, token), 'apiTokens');

    const lastUsedAt = await waitFor(async () => (await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-pipeline' } })).lastUsedAt);
    expect(lastUsedAt.getTime()).toBeGreaterThanOrEqual(usedFrom - 1000);
    expect(lastUsedAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    // Both requests above may each record the use (neither saw the other's write): the listing shows what is stored
    // once the later write has landed.
    const shown = await waitFor(async () => {
      const listed = await api.gql('{ apiTokens(first: 100) { edges { node { id lastUsedAt } } } }', {}, tokens.OWNER);
      const node = listed.body.data.apiTokens.edges.map((e: any) => e.node).find((n: any) => n.id === tokenGid);
      const stored = (await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-pipeline' } })).lastUsedAt!;
      return node.lastUsedAt === stored.toISOString() ? { node, stored } : null;
    }, 15_000, 'the listing to show the stored lastUsedAt');
    expect(shown.node.lastUsedAt).toBe(shown.stored.toISOString());
    expect(shown.stored.getTime() - lastUsedAt.getTime()).toBeLessThan(1000);
  });

  it('is listed by apiTokens with its prefix, never its secret', async () => {
    // Every scalar field ApiToken has, so a field added later that leaks the secret is caught too.
    const type = await api.gql('{ __type(name: "ApiToken") { fields { name type { kind ofType { kind } } } } }', {}, tokens.OWNER);
    const leaf = (t: { kind: string; ofType?: { kind: string } | null }) =>
      ['SCALAR', 'ENUM'].includes(t.kind === 'NON_NULL' ? t.ofType!.kind : t.kind);
    const fields: string[] = type.body.data.__type.fields.filter((f: any) => leaf(f.type)).map((f: any) => f.name);
    expect(fields).toEqual(expect.arrayContaining(['id', 'name', 'prefix', 'role']));

    const res = await api.gql(`{ apiTokens(first: 100) { totalCount edges { node { ${fields.join(' ')} } } } }`, {}, tokens.OWNER);
    expect(res.body.errors).toBeUndefined();
    const node = res.body.data.apiTokens.edges.map((e: any) => e.node).find((n: any) => n.id === tokenGid);
    expect(node).toMatchObject({ name: 'ci-pipeline', role: 'APPLICATION', prefix: token.slice(0, 12), userName: 'ci-bot' });
    const row = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-pipeline' } });
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(12));
    expect(text).not.toContain(row.hash);
    for (const role of roles) expect(text).not.toContain(tokens[role]);
  });

  it('rejects an expiry in the past as a typed validation error, creating nothing', async () => {
    const count = await api.prisma.apiToken.count();
    const res = await api.gql(create, { input: { name: 'stale', role: 'VIEWER', expiresAt: '2020-01-01T00:00:00Z' } }, tokens.OWNER);
    expect(res.body.data.createApiToken).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(await api.prisma.apiToken.count()).toBe(count);
  });

  it('refuses names with control characters, and a user name with /, as typed validation errors naming the field', async () => {
    const count = await api.prisma.apiToken.count();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'tab\there', role: 'VIEWER' }, 'name'],
      [{ name: 'line\nID\tfake', role: 'VIEWER' }, 'name'],
      [{ name: 'colour \u001b[31mred', role: 'VIEWER' }, 'name'],
      [{ name: 'fine', role: 'VIEWER', userName: 'a/b' }, 'userName'],
      [{ name: 'fine', role: 'VIEWER', userName: 'bell\u0007' }, 'userName'],
    ];
    for (const [input, field] of cases) {
      const res = await api.gql(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { __typename ... on ValidationError { code fieldErrors { path } } } }`, { input }, tokens.OWNER);
      expect(res.body.data.createApiToken, JSON.stringify(input)).toEqual({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: [field] }] });
    }
    expect(await api.prisma.apiToken.count()).toBe(count);
  });

  it('refuses an expiry on a day that does not exist, or past year 9999, as a malformed DateTime, creating nothing', async () => {
    const count = await api.prisma.apiToken.count();
    const malformed = await api.gql(create, { input: { name: 'odd', role: 'VIEWER', expiresAt: 'next year' } }, tokens.OWNER);
    for (const expiresAt of ['2029-02-29T00:00:00Z', '2030-06-31T00:00:00Z', '9999-12-31T23:59:59-00:01']) {
      const res = await api.gql(create, { input: { name: 'odd', role: 'VIEWER', expiresAt } }, tokens.OWNER);
      expect(res.body.data?.createApiToken ?? null, expiresAt).toBeNull();
      expect(res.body.errors, expiresAt).toEqual(malformed.body.errors);
      expect(res.body.errors![0]!.message).toContain('input.expiresAt');
    }
    expect(await api.prisma.apiToken.count()).toBe(count);
  });
});

describe('viewer', () => {
  for (const role of roles) {
    it(`tells a ${role} token its user, role and permissions`, async () => {
      const res = await api.gql('{ viewer { userName role permissions } }', {}, tokens[role]);
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      const { userName, role: reported, permissions } = res.body.data.viewer;
      expect(userName).toBe(`${role.toLowerCase()}-user`);
      expect(reported).toBe(role);
      expect([...permissions].sort()).toEqual([...expectedPermissions[role]].sort());
    });
  }
});

describe('X-Request-Id', () => {
  it('echoes a given request id', async () => {
    const id = `trace-${randomBytes(6).toString('hex')}.a:1`;
    const res = await post('{ viewer { role } }', { authorization: `Bearer ${tokens.VIEWER}`, 'x-request-id': id });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    // Also on a refusal.
    const refused = await post('{ viewer { role } }', { 'x-request-id': id });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-request-id')).toBe(id);
  });

  it('generates one when none (or an unusable one) is given', async () => {
    const first = await post('{ viewer { role } }', { authorization: `Bearer ${tokens.VIEWER}` });
    const second = await post('{ viewer { role } }', { authorization: `Bearer ${tokens.VIEWER}` });
    const a = first.headers.get('x-request-id');
    const b = second.headers.get('x-request-id');
    expect(a).toMatch(uuidPattern);
    expect(b).toMatch(uuidPattern);
    expect(a).not.toBe(b);
    for (const bad of ['has spaces in it', 'x'.repeat(129), 'semi;colon']) {
      const res = await post('{ viewer { role } }', { authorization: `Bearer ${tokens.VIEWER}`, 'x-request-id': bad });
      expect(res.headers.get('x-request-id')).toMatch(uuidPattern);
    }
  });

  it('records the request id on the audit entry of a mutation', async () => {
    const id = `audit-${randomBytes(6).toString('hex')}`;
    const res = await post(
      `mutation { createApiToken(input: { name: "traced", role: VIEWER }) { __typename ... on CreateApiTokenSuccess { created { apiToken { name } } } } }`,
      { authorization: `Bearer ${tokens.OWNER}`, 'x-request-id': id },
    );
    expect(res.headers.get('x-request-id')).toBe(id);
    expect((res.body.data as any).createApiToken.__typename).toBe('CreateApiTokenSuccess');
    const entries = await api.prisma.auditEntry.findMany({ where: { requestId: id } });
    expect(entries.map((e) => [e.action, e.actor])).toEqual([['token.create', actorOf('OWNER')]]);
  });
});
