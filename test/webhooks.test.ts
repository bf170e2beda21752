// Inbound webhooks (GitHub, GitLab, Salesforce relays, CI callbacks) and outbound notifications, end to end
// against a real API, Postgres schema, Redis prefix and worker. Payloads are realistic subsets of the shapes
// GitHub ("Webhook events and payloads") and GitLab ("Webhook events") document.
import { execFile } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { cliPrincipal } from '../src/domain/auth/principal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawId } from '../src/domain/ids.js';
import { normalise } from '../src/webhooks/events.js';
import { matches } from '../src/webhooks/glob.js';
import { signTimestamped, verifyGitHub, verifyTimestamped } from '../src/webhooks/signatures.js';
import { TaskLifecycle } from '../src/domain/tasks/task-lifecycle.js';
import { reconcileTasks } from '../src/workers/reconciler.js';
import { pino } from 'pino';
import { auditEntriesFor, concurrently, errorFields, postChunked, startTestApi, testDatabaseUrl, type TestApi } from './support/harness.js';
import { startTestWorker, waitFor, type TestWorker } from './support/worker-harness.js';

const execFileAsync = promisify(execFile);

let api: TestApi;
let token: string;

interface Source {
  id: string;
  path: string;
  secret: string;
  name: string;
}

const sources: Record<'gh' | 'gl' | 'sf' | 'ci', Source> = {} as never;
const rules: Record<string, string> = {};

async function data<T = any>(query: string, variables: Record<string, unknown> = {}, on: TestApi = api, bearer = token): Promise<T> {
  const res = await on.gql<T>(query, variables, bearer);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  return res.body.data!;
}

/** Registers an org through GraphQL (its instance on `host`); answers registerOrg's __typename. */
async function registerOrg(alias: string, kind = 'DEVELOPER', host = 'dev'): Promise<string> {
  const res = await data(
    `mutation($a: String!, $k: OrgKind!, $u: String!) { registerOrg(input: { alias: $a, kind: $k, credentials: { instanceUrl: $u, refreshToken: "5Aep861hooks" } }) { __typename } }`,
    { a: alias, k: kind, u: `https://${host}.my.salesforce.com` },
  );
  return res.registerOrg.__typename;
}

async function createSource(kind: 'GITHUB' | 'GITLAB' | 'SALESFORCE' | 'CI', name: string): Promise<Source> {
  const result = await data(
    `mutation($k: WebhookKind!, $n: String!) { createWebhookSource(kind: $k, name: $n) { __typename ... on CreateWebhookSourceSuccess { created { secret source { id path kind name } } } ${errorFields} } }`,
    { k: kind, n: name },
  );
  expect(result.createWebhookSource.__typename).toBe('CreateWebhookSourceSuccess');
  const { secret, source } = result.createWebhookSource.created;
  return { id: source.id, path: source.path, secret, name };
}

const ruleMutation = `mutation($input: WebhookRuleInput!) { createWebhookRule(input: $input) { __typename
  ... on CreateWebhookRuleSuccess { rule { id name event repository ref taskType org params queue priority enabled source { id } } }
  ${errorFields} } }`;

async function createRule(source: Source, input: Record<string, unknown>): Promise<string> {
  const result = await data(ruleMutation, { input: { sourceId: source.id, taskType: 'DIAGNOSTIC', org: 'dev', params: { steps: 1, stepMs: 1 }, ...input } });
  expect(result.createWebhookRule.__typename, JSON.stringify(result.createWebhookRule)).toBe('CreateWebhookRuleSuccess');
  return result.createWebhookRule.rule.id;
}

interface Answer {
  status: number;
  contentType: string | null;
  retryAfter?: string | null;
  body: any;
}

async function post(path: string, body: string, headers: Record<string, string>, contentType = 'application/json', on: TestApi = api): Promise<Answer> {
  const res = await fetch(`${on.url}${path}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  return { status: res.status, contentType: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

const githubSignature = (secret: string, body: string | Buffer) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** The headers GitHub sends with a delivery ("Webhook events and payloads: Delivery headers"). */
function github(source: Source, event: string, payload: unknown, delivery: string = randomUUID(), on: TestApi = api) {
  const body = JSON.stringify(payload);
  return post(source.path, body, {
    'user-agent': 'GitHub-Hookshot/044aadd',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-github-hook-id': '292430182',
    'x-github-hook-installation-target-id': '79929171',
    'x-github-hook-installation-target-type': 'repository',
    'x-hub-signature': `sha1=${createHmac('sha1', source.secret).update(body).digest('hex')}`,
    'x-hub-signature-256': githubSignature(source.secret, body),
  }, 'application/json', on);
}

/** The headers GitLab sends ("Webhooks: Delivery headers"). */
function gitlab(source: Source, event: string, payload: unknown, ids: { uuid?: string; idempotencyKey?: string } = { uuid: randomUUID() }) {
  return post(source.path, JSON.stringify(payload), {
    'user-agent': 'GitLab/17.6.0',
    'x-gitlab-event': event,
    'x-gitlab-token': source.secret,
    'x-gitlab-instance': 'https://gitlab.example.com',
    'x-gitlab-webhook-uuid': '9b6b5b4f-7f7d-4a93-8c1a-3a2f4b0f6c0e',
    ...(ids.uuid ? { 'x-gitlab-event-uuid': ids.uuid } : {}),
    ...(ids.idempotencyKey ? { 'idempotency-key': ids.idempotencyKey } : {}),
  });
}

function timestamped(source: Source, payload: unknown, options: { t?: number; delivery?: string; secret?: string } = {}) {
  const body = JSON.stringify(payload);
  const t = options.t ?? Math.floor(Date.now() / 1000);
  return post(source.path, body, {
    'x-switchyard-signature': signTimestamped(options.secret ?? source.secret, body, t),
    ...(options.delivery !== undefined ? { 'x-switchyard-delivery': options.delivery } : {}),
  });
}

// --- documented payloads (subsets) ---

const ghRepository = (fullName: string) => {
  const [owner, name] = fullName.split('/') as [string, string];
  return {
    id: 186853002,
    node_id: 'MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=',
    name,
    full_name: fullName,
    private: true,
    owner: { name: owner, login: owner, id: 21031067, type: 'Organization' },
    html_url: `https://github.com/${fullName}`,
    default_branch: 'main',
  };
};
const ghSender = { login: 'octocat', id: 583231, node_id: 'MDQ6VXNlcjU4MzIzMQ==', type: 'User', site_admin: false };
const ghCommit = (message: string) => ({
  id: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
  tree_id: 'f9d2a07e9488b91af2641b26b9407fe22a451433',
  distinct: true,
  message,
  timestamp: '2024-06-03T09:15:27+02:00',
  url: 'https://github.com/acme/app/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
  author: { name: 'Mona Lisa Octocat', email: 'mona@example.com', username: 'octocat' },
  committer: { name: 'GitHub', email: 'noreply@github.com', username: 'web-flow' },
  added: [],
  removed: [],
  modified: ['force-app/main/default/classes/AccountService.cls'],
});

/** A push of one new commit: each has its own sha, so no two pushes are the same body, as with GitHub. */
function ghPush(repo: string, ref: string, extra: Record<string, unknown> = {}) {
  const commit = { ...ghCommit('Tighten AccountService sharing'), id: randomBytes(20).toString('hex') };
  return {
    ref,
    before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
    after: commit.id,
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/${repo}/compare/6113728f27ae...0d1a26e67d8f`,
    commits: [commit],
    head_commit: commit,
    repository: ghRepository(repo),
    pusher: { name: 'octocat', email: 'mona@example.com' },
    sender: ghSender,
    ...extra,
  };
}

function ghTagPush(repo: string, tag: string) {
  return ghPush(repo, `refs/tags/${tag}`, { before: '0000000000000000000000000000000000000000', created: true, base_ref: 'refs/heads/main', commits: [] });
}

function ghPullRequest(action: 'opened' | 'synchronize' | 'closed', repo: string, base: string, head = 'feature/einstein', merged = action === 'closed') {
  return {
    action,
    number: 42,
    ...(action === 'synchronize' ? { before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246', after: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c' } : {}),
    pull_request: {
      url: `https://api.github.com/repos/${repo}/pulls/42`,
      id: 1783420432,
      number: 42,
      state: action === 'closed' ? 'closed' : 'open',
      title: 'Einstein lead scoring',
      user: ghSender,
      draft: false,
      merged,
      merge_commit_sha: merged ? '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c' : null,
      head: { label: `acme:${head}`, ref: head, sha: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c', repo: ghRepository(repo) },
      base: { label: `acme:${base}`, ref: base, sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246', repo: ghRepository(repo) },
    },
    repository: ghRepository(repo),
    sender: ghSender,
  };
}

const ghPing = {
  zen: 'Design for failure.',
  hook_id: 292430182,
  hook: {
    type: 'Repository',
    id: 292430182,
    name: 'web',
    active: true,
    events: ['push', 'pull_request'],
    config: { content_type: 'json', insecure_ssl: '0', url: 'https://switchyard.example.com/webhooks/github/x' },
  },
  repository: ghRepository('acme/app'),
  sender: ghSender,
};

const glProject = (path: string) => ({
  id: 15,
  name: path.split('/').at(-1),
  description: 'Salesforce metadata',
  web_url: `https://gitlab.example.com/${path}`,
  git_ssh_url: `git@gitlab.example.com:${path}.git`,
  git_http_url: `https://gitlab.example.com/${path}.git`,
  namespace: path.split('/')[0],
  visibility_level: 0,
  path_with_namespace: path,
  default_branch: 'main',
});
const glCommit = {
  id: 'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327',
  message: 'Update Catalan translation to e38cb41.\n',
  title: 'Update Catalan translation to e38cb41.',
  timestamp: '2011-12-12T14:27:31+02:00',
  url: 'https://gitlab.example.com/mike/diaspora/commit/b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327',
  author: { name: 'Jordi Mallach', email: 'jordi@softcatala.org' },
  added: ['CHANGELOG'],
  modified: ['app/controller/application.rb'],
  removed: [],
};

function glPush(project: string, ref: string, tag = false) {
  return {
    object_kind: tag ? 'tag_push' : 'push',
    event_name: tag ? 'tag_push' : 'push',
    before: tag ? '0000000000000000000000000000000000000000' : '95790bf891e76fee5e1747ab589903a6a1f80f22',
    after: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    ref,
    ref_protected: true,
    checkout_sha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
    user_id: 4,
    user_name: 'John Smith',
    user_username: 'jsmith',
    user_email: 'john@example.com',
    project_id: 15,
    project: glProject(project),
    commits: tag ? [] : [glCommit],
    total_commits_count: tag ? 0 : 1,
    repository: { name: project.split('/').at(-1), url: `git@gitlab.example.com:${project}.git`, homepage: `https://gitlab.example.com/${project}` },
  };
}

function glMergeRequest(action: 'open' | 'update' | 'merge', project: string, target: string) {
  return {
    object_kind: 'merge_request',
    event_type: 'merge_request',
    user: { id: 1, name: 'Administrator', username: 'root', email: 'admin@example.com' },
    project: glProject(project),
    object_attributes: {
      id: 99,
      iid: 1,
      target_branch: target,
      source_branch: 'ms-viewport',
      source_project_id: 14,
      target_project_id: 14,
      author_id: 51,
      title: 'MS-Viewport',
      state: action === 'merge' ? 'merged' : 'opened',
      merge_status: 'unchecked',
      url: `https://gitlab.example.com/${project}/-/merge_requests/1`,
      action,
    },
    labels: [],
    changes: {},
    repository: { name: project.split('/').at(-1), url: `git@gitlab.example.com:${project}.git` },
  };
}

/** Every Redis key under the API's prefix but the rejection counter. */
async function redisKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await api.redis.scan(cursor, 'MATCH', `${api.queuePrefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.filter((key) => key !== rejectedKey()).sort();
}

async function counts() {
  return {
    deliveries: await api.prisma.webhookDelivery.count(),
    tasks: await api.prisma.task.count(),
    audit: await api.prisma.auditEntry.count(),
  };
}

const rejectedKey = () => `${api.queuePrefix}:webhooks:rejected`;
const rejected = async (field: string) => Number((await api.redis.hget(rejectedKey(), field)) ?? 0);

async function task(id: string) {
  const result = await data(
    `query($id: ID!) { task(id: $id) { id type status source queue priority requestedBy orgAlias events { edges { node { seq kind payload } } } } }`,
    { id },
  );
  return result.task;
}

// The notification tests get their own API and worker (so the tasks the rules here create stay queued and
// notify nobody), started alongside.
let napi: TestApi;
let worker: TestWorker;
let notifySetup: Promise<void>;

beforeAll(async () => {
  notifySetup = (async () => {
    napi = await startTestApi('webhooks_notify');
    worker = await startTestWorker(napi);
  })();
  notifySetup.catch(() => undefined);
  api = await startTestApi('webhooks');
  token = await api.token('OWNER');
  for (const alias of ['dev', 'doomed']) expect(await registerOrg(alias)).toBe('RegisterOrgSuccess');
  sources.gh = await createSource('GITHUB', 'acme-github');
  sources.gl = await createSource('GITLAB', 'acme-gitlab');
  sources.sf = await createSource('SALESFORCE', 'prod-events');
  sources.ci = await createSource('CI', 'jenkins');

  rules.ghMain = await createRule(sources.gh, { name: 'main', event: 'push', repository: 'acme/*', ref: 'main', queue: 'CRITICAL', priority: 90 });
  rules.ghRelease = await createRule(sources.gh, { name: 'release-branches', event: 'push', ref: 'release/*', queue: 'BATCH', priority: 10 });
  rules.ghAllAcme = await createRule(sources.gh, { name: 'all-acme-pushes', event: 'push', repository: 'acme/*' });
  rules.ghTags = await createRule(sources.gh, { name: 'tags', event: 'tag', ref: 'v*', priority: 70 });
  rules.ghPr = await createRule(sources.gh, { name: 'pr-to-release', event: 'pull_request.opened', repository: 'acme/*', ref: 'release/*', queue: 'CRITICAL' });
  rules.ghHotfix = await createRule(sources.gh, { name: 'globex-hotfix', event: 'push', repository: 'globex/*', ref: 'hotfix/*' });
  rules.ghDoomed = await createRule(sources.gh, { name: 'doomed-cleanup', event: 'push', repository: 'initech/*', org: 'doomed' });
  rules.glMain = await createRule(sources.gl, { name: 'gl-main', event: 'push', repository: 'acme/*', ref: 'main', priority: 80 });
  rules.glTags = await createRule(sources.gl, { name: 'gl-tags', event: 'tag', ref: 'v*' });
  rules.glMr = await createRule(sources.gl, { name: 'gl-mr', event: 'merge_request.open', repository: 'acme/*', ref: 'main' });
  rules.sf = await createRule(sources.sf, { name: 'release-ready', event: 'Release_Ready__e' });
  rules.ci = await createRule(sources.ci, { name: 'ci-green-main', event: 'success', ref: 'main' });
});

afterAll(async () => {
  await notifySetup?.catch(() => undefined);
  await worker?.close();
  await Promise.all([api?.close(), napi?.close()]);
});

describe('rule globs', () => {
  it('match * within a segment, ** across segments, ? one character, and everything else literally', () => {
    const cases: Array<[pattern: string | null, value: string | null, matches: boolean]> = [
      ['release/*', 'release/2024.06', true],
      ['release/*', 'release/2024/06', false],
      ['release/**', 'release/2024/06', true],
      ['v?.*', 'v1.2', true],
      ['v?.*', 'v10.2', false],
      ['a?c', 'a/c', false],
      ['acme/*', 'acme/app', true],
      ['acme/*', 'globex/app', false],
      ['*', '', true],
      ['**/main', 'team/feature/main', true],
      ['[a].(b)+', '[a].(b)+', true],
      ['[a].(b)+', 'a.b', false],
      [null, 'anything', true],
      ['*', null, false],
    ];
    for (const [pattern, value, expected] of cases) expect(matches(pattern, value), `${pattern} against ${value}`).toBe(expected);
  });

  it('answer at once for a pattern of many stars against a long value (a backtracking matcher would take hours)', () => {
    const pattern = `${'*a'.repeat(14)}*b`;
    expect(matches(pattern, 'a'.repeat(80))).toBe(false);
    expect(matches(pattern, `${'a'.repeat(80)}b`)).toBe(true);
    expect(matches(`${'**a'.repeat(14)}**b`, `${'a/'.repeat(60)}c`)).toBe(false);
  });
});

describe('signatures', () => {
  it("accepts GitHub's documented example and nothing else", () => {
    const secret = "It's a Secret to Everybody";
    const documented = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(verifyGitHub(secret, Buffer.from('Hello, World!'), documented)).toBe(true);
    expect(verifyGitHub(secret, Buffer.from('Hello, World'), documented)).toBe(false);
    expect(verifyGitHub('its a secret to everybody', Buffer.from('Hello, World!'), documented)).toBe(false);
    expect(verifyGitHub(secret, Buffer.from('Hello, World!'), documented.slice('sha256='.length))).toBe(false);
    expect(verifyGitHub(secret, Buffer.from('Hello, World!'), documented.toUpperCase())).toBe(false);
    expect(verifyGitHub(secret, Buffer.from('Hello, World!'), undefined)).toBe(false);
  });

  it('checks the timestamped format: signature, 5-minute window, 30 s skew', () => {
    const body = Buffer.from('{"a":1}');
    const now = Date.now();
    const t = Math.floor(now / 1000);
    const v1 = createHmac('sha256', 's').update(`${t}.{"a":1}`).digest('hex');
    expect(verifyTimestamped('s', body, signTimestamped('s', body, t), now)).toEqual({ ok: true, timestamp: t, signature: v1 });
    expect(signTimestamped('s', body, t)).toBe(`t=${t},v1=${createHmac('sha256', 's').update(`${t}.{"a":1}`).digest('hex')}`);
    expect(verifyTimestamped('other', body, signTimestamped('s', body, t), now)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(verifyTimestamped('s', Buffer.from('{"a":2}'), signTimestamped('s', body, t), now)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(verifyTimestamped('s', body, signTimestamped('s', body, t - 360), now)).toEqual({ ok: false, reason: 'STALE_TIMESTAMP' });
    expect(verifyTimestamped('s', body, signTimestamped('s', body, t + 60), now)).toEqual({ ok: false, reason: 'STALE_TIMESTAMP' });
    expect(verifyTimestamped('s', body, signTimestamped('s', body, t - 240), now).ok).toBe(true);
    expect(verifyTimestamped('s', body, undefined, now)).toEqual({ ok: false, reason: 'MISSING_SIGNATURE' });
  });

  it('verifies a full GitHub request with the documented algorithm, secret and header', async () => {
    const source = await createSource('GITHUB', 'docs-example');
    // Give this source the secret from GitHub's documentation, before it was ever used (nothing cached).
    const row = await api.prisma.webhookSource.findUniqueOrThrow({ where: { id: rawId(source.id, 'WebhookSource')! } });
    await api.services.secrets.put(row.secretRef, { secret: "It's a Secret to Everybody" });
    const documented = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    // "Hello, World!" is not JSON: a 400 (not a 401) shows that the documented signature was accepted.
    const example = await post(source.path, 'Hello, World!', { 'x-github-event': 'push', 'x-hub-signature-256': documented });
    expect(example).toMatchObject({ status: 400, body: { error: { code: 'MALFORMED_JSON' } } });
    const forged = await post(source.path, 'Hello, World?', { 'x-github-event': 'push', 'x-hub-signature-256': documented });
    expect(forged).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    const push = await github({ ...source, secret: "It's a Secret to Everybody" }, 'push', ghPush('acme/app', 'refs/heads/main'));
    expect(push).toMatchObject({ status: 200, body: { duplicate: false, status: 'IGNORED', event: 'push', taskIds: [] } });
  });
});

describe('sources and their secrets', () => {
  it('shows the secret once and keeps it out of Postgres', async () => {
    const listed = await data(`{ webhookSources(first: 50) { totalCount edges { node { id kind name path createdBy } } } }`);
    const gh = listed.webhookSources.edges.find((e: any) => e.node.id === sources.gh.id).node;
    expect(gh).toMatchObject({ kind: 'GITHUB', name: 'acme-github', path: `/webhooks/github/${rawId(sources.gh.id, 'WebhookSource')}` });
    expect(sources.gh.path).toBe(gh.path);
    expect(sources.sf.path).toMatch(/^\/webhooks\/salesforce\/[0-9a-f-]{36}$/);
    expect(sources.ci.path).toMatch(/^\/webhooks\/ci\/[0-9a-f-]{36}$/);
    for (const source of Object.values(sources)) expect(source.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const { stdout: dump } = await execFileAsync('pg_dump', ['--data-only', '-n', api.schema, '-d', testDatabaseUrl], { maxBuffer: 64 * 1024 * 1024 });
    // The dump holds the sources and their secret rows, so the absence below means something.
    const row = await api.prisma.webhookSource.findUniqueOrThrow({ where: { id: rawId(sources.gh.id, 'WebhookSource')! } });
    expect(dump).toContain(row.id);
    expect(dump).toContain(row.secretRef);
    expect(dump).toContain('acme-gitlab');
    for (const source of Object.values(sources)) {
      expect(dump).not.toContain(source.secret);
      expect(dump).not.toContain(source.secret.slice(8, 30));
      expect(dump).not.toContain(Buffer.from(source.secret).toString('hex').slice(0, 40));
      expect(api.logLines.join('')).not.toContain(source.secret);
    }
  });

  it('removes the secret it wrote again when the source itself cannot be written', async () => {
    const secrets = await api.prisma.secret.count();
    // Refused by Postgres (text cannot hold NUL); the API refuses such a name before this point.
    await expect(api.services.webhooks.createSource(cliPrincipal, { kind: 'GITHUB', name: 'nul\u0000name' })).rejects.toThrow();
    expect(await api.prisma.secret.count()).toBe(secrets);
  });

  it('rotates: the old secret is refused at once, the new one works', async () => {
    const source = await createSource('GITHUB', 'rotating');
    const payload = ghPush('acme/app', 'refs/heads/feature/x');
    expect((await github(source, 'push', payload)).status).toBe(200); // the secret is now cached
    const rotated = await data(
      `mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on RotateWebhookSecretSuccess { created { secret source { id path } } } ${errorFields} } }`,
      { id: source.id },
    );
    const { secret, source: after } = rotated.rotateWebhookSecret.created;
    expect(after).toEqual({ id: source.id, path: source.path });
    expect(secret).not.toBe(source.secret);
    const before = await rejected(`${rawId(source.id, 'WebhookSource')}:BAD_SIGNATURE`);
    const old = await github(source, 'push', payload);
    expect(old).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    expect(await rejected(`${rawId(source.id, 'WebhookSource')}:BAD_SIGNATURE`)).toBe(before + 1);
    expect(await github({ ...source, secret }, 'push', payload)).toMatchObject({ status: 200, body: { duplicate: false } });

    const missing = await data(`mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ${errorFields} } }`, { id: randomUUID() });
    expect(missing.rotateWebhookSecret).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_SOURCE_NOT_FOUND' });
  });

  const rotateWithOverlap = async (id: string, seconds?: number) =>
    (
      await data(
        `mutation($id: ID!, $s: Int) { rotateWebhookSecret(id: $id, previousSecretValidForSeconds: $s) { __typename
          ... on RotateWebhookSecretSuccess { created { secret source { previousSecretExpiresAt } } } ${errorFields} } }`,
        { id, s: seconds },
      )
    ).rotateWebhookSecret;
  const previousSecretExpiresAt = async (id: string) =>
    (await data(`query($id: ID!) { node(id: $id) { ... on WebhookSource { previousSecretExpiresAt } } }`, { id })).node.previousSecretExpiresAt;

  it('rotates with an overlap: the old and the new secret both work until it ends, for every kind of source', async () => {
    const gh = await createSource('GITHUB', 'overlap-github');
    const gl = await createSource('GITLAB', 'overlap-gitlab');
    const ci = await createSource('CI', 'overlap-ci');
    const push = ghPush('acme/app', 'refs/heads/feature/overlap');
    const callback = { status: 'success', repository: 'acme/app', ref: 'main', buildNumber: 1 };
    // Cached before the rotation, as on a busy replica.
    expect((await github(gh, 'push', push)).status).toBe(200);
    expect((await gitlab(gl, 'Push Hook', glPush('acme/app', 'refs/heads/main'))).status).toBe(200);
    expect((await timestamped(ci, callback)).status).toBe(200);

    const before = Date.now();
    const rotated = await Promise.all([gh, gl, ci].map((source) => rotateWithOverlap(source.id, 3600)));
    for (const answer of rotated) {
      expect(answer.__typename).toBe('RotateWebhookSecretSuccess');
      const expires = Date.parse(answer.created.source.previousSecretExpiresAt);
      expect(expires).toBeGreaterThanOrEqual(before + 3_600_000 - 1000);
      expect(expires).toBeLessThanOrEqual(Date.now() + 3_600_000 + 1000);
    }
    const [ghNew, glNew, ciNew] = rotated.map((answer, i) => ({ ...[gh, gl, ci][i]!, secret: answer.created.secret as string }));
    expect(await previousSecretExpiresAt(gh.id)).toBe(rotated[0].created.source.previousSecretExpiresAt);

    for (const source of [gh, ghNew!]) expect((await github(source, 'push', push)).status).toBe(200);
    for (const source of [gl, glNew!]) expect((await gitlab(source, 'Push Hook', glPush('acme/app', 'refs/heads/main'))).status).toBe(200);
    for (const source of [ci, ciNew!]) expect((await timestamped(source, callback, { delivery: randomUUID() })).status).toBe(200);
    // The old secret made the signature, it is just too old: said so, as for the current secret.
    expect(await timestamped(ci, callback, { t: Math.floor(Date.now() / 1000) - 600 })).toMatchObject({ status: 401, body: { error: { code: 'STALE_TIMESTAMP' } } });
    // Any other secret is still refused.
    expect((await github({ ...gh, secret: 'not-the-secret' }, 'push', push)).status).toBe(401);
    expect((await gitlab({ ...gl, secret: 'not-the-secret' }, 'Push Hook', glPush('acme/app', 'refs/heads/main'))).status).toBe(401);
    expect(await timestamped(ci, callback, { secret: 'not-the-secret' })).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });

    // Rotating again keeps only the secret it replaces: the first one goes.
    const third = await rotateWithOverlap(gh.id, 3600);
    expect((await github(gh, 'push', push)).status).toBe(401);
    expect((await github(ghNew!, 'push', push)).status).toBe(200);
    expect((await github({ ...gh, secret: third.created.secret }, 'push', push)).status).toBe(200);
    // And one without an overlap ends it at once.
    const last = await rotateWithOverlap(gh.id);
    expect(last.created.source.previousSecretExpiresAt).toBeNull();
    expect(await previousSecretExpiresAt(gh.id)).toBeNull();
    for (const secret of [ghNew!.secret, third.created.secret]) expect((await github({ ...gh, secret }, 'push', push)).status).toBe(401);
    expect((await github({ ...gh, secret: last.created.secret }, 'push', push)).status).toBe(200);

    const audit = await api.gql(`{ auditEntries(first: 500) { edges { node { action targetId details } } } }`, {}, token);
    const rotations = audit.body.data.auditEntries.edges
      .map((edge: any) => edge.node)
      .filter((entry: any) => entry.targetId === rawId(gh.id, 'WebhookSource') && entry.action === 'webhook.source.rotate')
      .map((entry: any) => entry.details);
    expect(rotations).toEqual([{ previousSecretValidForSeconds: 0 }, { previousSecretValidForSeconds: 3600 }, { previousSecretValidForSeconds: 3600 }]);
  });

  it('an overlap ends when its time is up, though the source is cached', async () => {
    const source = await createSource('GITHUB', 'short-overlap');
    const push = ghPush('acme/app', 'refs/heads/feature/short');
    expect((await github(source, 'push', push)).status).toBe(200);
    const rotated = await rotateWithOverlap(source.id, 1);
    const renewed = { ...source, secret: rotated.created.secret as string };
    expect((await github(source, 'push', push)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, Date.parse(rotated.created.source.previousSecretExpiresAt) - Date.now() + 50));
    expect(await github(source, 'push', push)).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    expect((await github(renewed, 'push', push)).status).toBe(200);
    expect(await previousSecretExpiresAt(source.id)).toBeNull();
  });

  it('concurrent rotations with an overlap each keep the secret of the one before', async () => {
    const source = await createSource('GITHUB', 'concurrent-rotations');
    const push = ghPush('acme/app', 'refs/heads/feature/race');
    const [a, b] = await Promise.all([rotateWithOverlap(source.id, 3600), rotateWithOverlap(source.id, 3600)]);
    // One of the two came last and kept the other's; the original is gone either way.
    const accepted = [];
    for (const secret of [source.secret, a.created.secret, b.created.secret]) accepted.push((await github({ ...source, secret }, 'push', push)).status);
    expect(accepted).toEqual([401, 200, 200]);
  });

  it('a rotation that cannot be recorded leaves the source with the secret it had', async () => {
    const source = await createSource('GITHUB', 'unrecorded-rotation');
    const id = rawId(source.id, 'WebhookSource')!;
    const stored = await api.services.secrets.get(`webhooks/${id}`);
    // Postgres refuses the audit entry (text cannot hold NUL), after the new secret was written.
    const unrecordable = { ...cliPrincipal, kind: 'token' as const, userName: 'nul\u0000name', tokenName: 'x' };
    await expect(api.services.webhooks.rotateSourceSecret(unrecordable, id, { previousSecretValidForSeconds: 3600 })).rejects.toThrow();
    expect(await api.services.secrets.get(`webhooks/${id}`)).toEqual(stored);
    expect((await github(source, 'push', ghPush('acme/app', 'refs/heads/feature/unrecorded'))).status).toBe(200);
    expect(await previousSecretExpiresAt(source.id)).toBeNull();
  });

  it('refuses an overlap out of range and changes nothing', async () => {
    const source = await createSource('GITHUB', 'bad-overlap');
    for (const seconds of [-1, 7 * 24 * 3600 + 1]) {
      const answer = await rotateWithOverlap(source.id, seconds);
      expect(answer).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
      expect(answer.fieldErrors[0].path).toEqual(['previousSecretValidForSeconds']);
    }
    expect((await github(source, 'push', ghPush('acme/app', 'refs/heads/feature/z'))).status).toBe(200);
    expect(await previousSecretExpiresAt(source.id)).toBeNull();
  });

  it('deletes a source with its rules and deliveries; its URL stops answering', async () => {
    const source = await createSource('GITLAB', 'short-lived');
    await createRule(source, { name: 'anything' });
    expect((await gitlab(source, 'Push Hook', glPush('acme/app', 'refs/heads/main'))).status).toBe(200);
    const id = rawId(source.id, 'WebhookSource')!;
    expect(await api.prisma.webhookDelivery.count({ where: { sourceId: id } })).toBe(1);
    const deleted = await data(`mutation($id: ID!) { deleteWebhookSource(id: $id) { __typename ... on DeleteWebhookSourceSuccess { source { id name } } ${errorFields} } }`, {
      id: source.id,
    });
    expect(deleted.deleteWebhookSource).toMatchObject({ __typename: 'DeleteWebhookSourceSuccess', source: { id: source.id, name: 'short-lived' } });
    expect(await api.prisma.webhookRule.count({ where: { sourceId: id } })).toBe(0);
    expect(await api.prisma.webhookDelivery.count({ where: { sourceId: id } })).toBe(0);
    const row = await api.prisma.secret.findMany({ where: { name: `webhooks/${id}` } });
    expect(row).toHaveLength(0);
    expect(await gitlab(source, 'Push Hook', glPush('acme/app', 'refs/heads/main'))).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    const again = await data(`mutation($id: ID!) { deleteWebhookSource(id: $id) { __typename ${errorFields} } }`, { id: source.id });
    expect(again.deleteWebhookSource).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_SOURCE_NOT_FOUND' });
  });

  it('answers WEBHOOK_SOURCE_NOT_FOUND to all but one of six concurrent deletions, as to a later one, and audits one', async () => {
    const source = await createSource('CI', 'raced');
    const id = rawId(source.id, 'WebhookSource')!;
    const query = `mutation($id: ID!) { deleteWebhookSource(id: $id) { __typename ... on DeleteWebhookSourceSuccess { source { id } } ${errorFields} } }`;
    const results = await concurrently(api, token, Array.from({ length: 6 }, () => ({ query, variables: { id: source.id }, field: 'deleteWebhookSource' })));
    const later = (await data(query, { id: source.id })).deleteWebhookSource;
    expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_SOURCE_NOT_FOUND' });
    expect(results.filter((r) => r.__typename === 'DeleteWebhookSourceSuccess')).toEqual([{ __typename: 'DeleteWebhookSourceSuccess', source: { id: source.id } }]);
    expect(results.filter((r) => r.__typename !== 'DeleteWebhookSourceSuccess')).toEqual(Array(5).fill(later));
    expect((await auditEntriesFor(api, token, id)).map((e) => e.action)).toEqual(['webhook.source.delete', 'webhook.source.create']);
    expect(await api.prisma.secret.count({ where: { name: `webhooks/${id}` } })).toBe(0);
  });
});

describe('rules', () => {
  it('creates, lists, updates and deletes rules, with typed validation errors', async () => {
    const source = await createSource('GITHUB', 'crud');
    const created = await data(ruleMutation, {
      input: { sourceId: source.id, name: 'r1', event: 'push', repository: 'acme/*', ref: 'release/*', taskType: 'DIAGNOSTIC', org: 'dev', params: { steps: 2 }, queue: 'BATCH', priority: 20 },
    });
    const rule = created.createWebhookRule.rule;
    expect(rule).toMatchObject({
      name: 'r1',
      event: 'push',
      repository: 'acme/*',
      ref: 'release/*',
      taskType: 'DIAGNOSTIC',
      org: 'dev',
      queue: 'BATCH',
      priority: 20,
      enabled: true,
      source: { id: source.id },
    });
    expect(rule.params).toMatchObject({ steps: 2, stepMs: 10 }); // validated, defaults filled in
    const second = await createRule(source, { name: 'r2' });

    const listed = await data(`query($s: ID) { webhookRules(sourceId: $s, first: 10) { totalCount edges { node { id name enabled priority } } } }`, { s: source.id });
    expect(listed.webhookRules.totalCount).toBe(2);
    expect(listed.webhookRules.edges.map((e: any) => e.node.id).sort()).toEqual([rule.id, second].sort());
    const all = await data(`{ webhookRules(first: 100) { totalCount } }`);
    expect(all.webhookRules.totalCount).toBeGreaterThan(10);

    const updated = await data(
      `mutation($id: ID!) { updateWebhookRule(id: $id, enabled: false, priority: 99, name: "renamed") { __typename ... on UpdateWebhookRuleSuccess { rule { id name enabled priority event ref } } ${errorFields} } }`,
      { id: rule.id },
    );
    expect(updated.updateWebhookRule.rule).toEqual({ id: rule.id, name: 'renamed', enabled: false, priority: 99, event: 'push', ref: 'release/*' });
    const badPriority = await data(`mutation($id: ID!) { updateWebhookRule(id: $id, priority: 101) { __typename ${errorFields} } }`, { id: rule.id });
    expect(badPriority.updateWebhookRule).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(badPriority.updateWebhookRule.fieldErrors.map((f: any) => f.path)).toEqual([['priority']]);

    const removed = await data(`mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename ... on DeleteWebhookRuleSuccess { rule { id name } } ${errorFields} } }`, { id: rule.id });
    expect(removed.deleteWebhookRule).toMatchObject({ __typename: 'DeleteWebhookRuleSuccess', rule: { id: rule.id, name: 'renamed' } });
    const gone = await data(`mutation($id: ID!) { updateWebhookRule(id: $id, enabled: true) { __typename ${errorFields} } }`, { id: rule.id });
    expect(gone.updateWebhookRule).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_RULE_NOT_FOUND' });
    const goneDelete = await data(`mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename ${errorFields} } }`, { id: rule.id });
    expect(goneDelete.deleteWebhookRule).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_RULE_NOT_FOUND' });
    expect((await data(`query($s: ID) { webhookRules(sourceId: $s) { totalCount } }`, { s: source.id })).webhookRules.totalCount).toBe(1);
    // Each change is audited, the failed ones not.
    const ruleId = rawId(rule.id, 'WebhookRule')!;
    expect((await auditEntriesFor(api, token, ruleId)).map((e) => e.action)).toEqual(['webhook.rule.delete', 'webhook.rule.update', 'webhook.rule.create']);
    const [deleted, changed, createdEntry] = await api.prisma.auditEntry.findMany({ where: { targetId: ruleId }, orderBy: { createdAt: 'desc' } });
    expect(createdEntry!.details).toMatchObject({ name: 'r1', sourceId: rawId(source.id, 'WebhookSource'), event: 'push', ref: 'release/*', taskType: 'DIAGNOSTIC', org: 'dev' });
    expect(changed!.details).toEqual({ enabled: false, priority: 99, name: 'renamed' });
    expect(deleted!.details).toEqual({ name: 'renamed', sourceId: rawId(source.id, 'WebhookSource') });

    const base = { sourceId: source.id, name: 'bad', taskType: 'DIAGNOSTIC', org: 'dev' };
    const before = await api.prisma.webhookRule.count();
    const unknownOrg = await data(ruleMutation, { input: { ...base, org: 'nope' } });
    expect(unknownOrg.createWebhookRule).toMatchObject({ __typename: 'NotFoundError', code: 'ORG_NOT_FOUND' });
    // An empty match field matches anything, as a left-out one does.
    const blank = await data(ruleMutation, { input: { sourceId: sources.gh.id, name: 'blank-fields', event: '', repository: '  ', ref: '', taskType: 'DIAGNOSTIC', org: 'dev', params: {}, enabled: false } });
    expect(blank.createWebhookRule).toMatchObject({ __typename: 'CreateWebhookRuleSuccess', rule: { event: null, repository: null, ref: null } });
    await data(`mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename } }`, { id: blank.createWebhookRule.rule.id });
    const badParams = await data(ruleMutation, { input: { ...base, params: { steps: 0 } } });
    expect(badParams.createWebhookRule).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    expect(badParams.createWebhookRule.fieldErrors.map((f: any) => f.path)).toEqual([['params', 'steps']]);
    const wrongType = await data(ruleMutation, { input: { ...base, taskType: 'DEPLOY', params: { steps: 3 } } });
    expect(wrongType.createWebhookRule.__typename).toBe('ValidationError');
    expect(wrongType.createWebhookRule.fieldErrors.every((f: any) => f.path[0] === 'params')).toBe(true);
    const unknownSource = await data(ruleMutation, { input: { ...base, sourceId: randomUUID() } });
    expect(unknownSource.createWebhookRule).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_SOURCE_NOT_FOUND' });
    const notAnId = await data(ruleMutation, { input: { ...base, sourceId: 'nope' } });
    expect(notAnId.createWebhookRule).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED', fieldErrors: [{ path: ['sourceId'] }] });
    const badPriorityOnCreate = await data(ruleMutation, { input: { ...base, priority: -1 } });
    expect(badPriorityOnCreate.createWebhookRule.fieldErrors.map((f: any) => f.path)).toEqual([['priority']]);
    // What submitTask would refuse of each task the rule creates is refused with the rule: NoTestRun in production.
    expect(await registerOrg('prod-rules', 'PRODUCTION', 'prodrules')).toBe('RegisterOrgSuccess');
    const noTests = await data(ruleMutation, { input: { ...base, org: 'prod-rules', taskType: 'VALIDATE', params: { artifactId: randomUUID(), testLevel: 'NoTestRun' } } });
    expect(noTests.createWebhookRule).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: ['params', 'testLevel'], message: expect.stringMatching(/^NoTestRun is not allowed on a production org/) }] });
    expect(await api.prisma.webhookRule.count()).toBe(before);
  });

  const deleteRule = { query: `mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename ... on DeleteWebhookRuleSuccess { rule { id } } ${errorFields} } }`, field: 'deleteWebhookRule' };
  const updateRule = { query: `mutation($id: ID!) { updateWebhookRule(id: $id, priority: 60) { __typename ... on UpdateWebhookRuleSuccess { rule { id } } ${errorFields} } }`, field: 'updateWebhookRule' };

  it('answers WEBHOOK_RULE_NOT_FOUND to all but one of six concurrent deletions, as to a later one', async () => {
    const source = await createSource('GITHUB', 'raced-rules');
    const id = await createRule(source, { name: 'raced' });
    const results = await concurrently(api, token, Array.from({ length: 6 }, () => ({ ...deleteRule, variables: { id } })));
    const later = (await data(deleteRule.query, { id })).deleteWebhookRule;
    expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_RULE_NOT_FOUND' });
    expect(results.filter((r) => r.__typename === 'DeleteWebhookRuleSuccess')).toEqual([{ __typename: 'DeleteWebhookRuleSuccess', rule: { id } }]);
    expect(results.filter((r) => r.__typename !== 'DeleteWebhookRuleSuccess')).toEqual(Array(5).fill(later));
  });

  it('answers a deletion with the rule as it was, its source included', async () => {
    const source = await createSource('GITHUB', 'deleted-with-source');
    const id = await createRule(source, { name: 'goes' });
    const deleted = await data(`mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename ... on DeleteWebhookRuleSuccess { rule { id name source { name } } } ${errorFields} } }`, { id });
    expect(deleted.deleteWebhookRule).toEqual({ __typename: 'DeleteWebhookRuleSuccess', rule: { id, name: 'goes', source: { name: 'deleted-with-source' } } });
  });

  it('answers WEBHOOK_RULE_NOT_FOUND to updates that lose a race with the rule\'s deletion', async () => {
    const source = await createSource('GITHUB', 'raced-updates');
    for (let round = 0; round < 3; round += 1) {
      const id = await createRule(source, { name: `raced-${round}` });
      const results = await concurrently(api, token, Array.from({ length: 6 }, (_, i) => ({ ...(i % 2 === 0 ? updateRule : deleteRule), variables: { id } })));
      const later = (await data(updateRule.query, { id })).updateWebhookRule;
      expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'WEBHOOK_RULE_NOT_FOUND' });
      expect(results.filter((r) => r.__typename === 'DeleteWebhookRuleSuccess')).toEqual([{ __typename: 'DeleteWebhookRuleSuccess', rule: { id } }]);
      // An update either came before the deletion or answers as one after it does.
      for (const result of results.filter((_, i) => i % 2 === 0)) {
        expect([{ __typename: 'UpdateWebhookRuleSuccess', rule: { id } }, later]).toContainEqual(result);
      }
    }
  });
});

describe('notification subscribers', () => {
  it('answers a deletion with the subscriber as it was, its attempts included', async () => {
    const created = await data(`mutation { createNotificationSubscriber(url: "https://hooks.example.com/goes") { ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`);
    const { id } = created.createNotificationSubscriber.created.subscriber;
    const deleted = await data(
      `mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename ... on DeleteNotificationSubscriberSuccess { subscriber { id url attempts(first: 5) { totalCount edges { node { attempt } } } } } ${errorFields} } }`,
      { id },
    );
    expect(deleted.deleteNotificationSubscriber).toEqual({
      __typename: 'DeleteNotificationSubscriberSuccess',
      subscriber: { id, url: 'https://hooks.example.com/goes', attempts: { totalCount: 0, edges: [] } },
    });
  });

  it('answers SUBSCRIBER_NOT_FOUND to all but one of six concurrent deletions, as to a later one, and audits one', async () => {
    const created = await data(
      `mutation { createNotificationSubscriber(url: "https://hooks.example.com/raced") { __typename ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } ${errorFields} } }`,
    );
    const { id } = created.createNotificationSubscriber.created.subscriber;
    const uuid = rawId(id, 'NotificationSubscriber')!;
    const query = `mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename ... on DeleteNotificationSubscriberSuccess { subscriber { id } } ${errorFields} } }`;
    const results = await concurrently(api, token, Array.from({ length: 6 }, () => ({ query, variables: { id }, field: 'deleteNotificationSubscriber' })));
    const later = (await data(query, { id })).deleteNotificationSubscriber;
    expect(later).toMatchObject({ __typename: 'NotFoundError', code: 'SUBSCRIBER_NOT_FOUND' });
    expect(results.filter((r) => r.__typename === 'DeleteNotificationSubscriberSuccess')).toEqual([{ __typename: 'DeleteNotificationSubscriberSuccess', subscriber: { id } }]);
    expect(results.filter((r) => r.__typename !== 'DeleteNotificationSubscriberSuccess')).toEqual(Array(5).fill(later));
    expect((await auditEntriesFor(api, token, uuid)).map((e) => e.action)).toEqual(['notification.subscriber.delete', 'notification.subscriber.create']);
    expect(await api.prisma.secret.count({ where: { name: `notifications/${uuid}` } })).toBe(0);
  });
});

describe('GitHub deliveries', () => {
  it('answers a ping with PONG and stores nothing', async () => {
    const before = await counts();
    const res = await github(sources.gh, 'ping', ghPing);
    expect(res).toMatchObject({ status: 200, body: { status: 'PONG', zen: 'Design for failure.' } });
    expect(res.contentType).toMatch(/^application\/json/);
    expect(await counts()).toEqual(before);
  });

  it('fires every matching rule on a push to main, creating tasks as the rules say', async () => {
    const res = await github(sources.gh, 'push', ghPush('acme/app', 'refs/heads/main'));
    expect(res).toMatchObject({ status: 200, body: { duplicate: false, status: 'PROCESSED', event: 'push' } });
    expect(res.body.taskIds).toHaveLength(2);
    const delivery = await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: res.body.deliveryId } });
    expect(delivery).toMatchObject({ repository: 'acme/app', ref: 'main', status: 'PROCESSED' });
    expect(delivery.matchedRuleIds.sort()).toEqual([rawId(rules.ghMain!, 'WebhookRule'), rawId(rules.ghAllAcme!, 'WebhookRule')].sort());
    const tasks = await Promise.all(res.body.taskIds.map((id: string) => task(id)));
    const byRule = Object.fromEntries(tasks.map((t) => [t.requestedBy, t]));
    expect(byRule['webhook:acme-github/main']).toMatchObject({ type: 'DIAGNOSTIC', source: 'WEBHOOK', queue: 'CRITICAL', priority: 90, status: 'QUEUED', orgAlias: 'dev' });
    expect(byRule['webhook:acme-github/all-acme-pushes']).toMatchObject({ source: 'WEBHOOK', queue: 'NORMAL', priority: 50 });
  });

  it('matches ref globs on branches and tags, and ignores what no rule wants', async () => {
    const release = await github(sources.gh, 'push', ghPush('acme/app', 'refs/heads/release/2024.06'));
    expect(release.body).toMatchObject({ status: 'PROCESSED', event: 'push' });
    const releaseTasks = await Promise.all(release.body.taskIds.map((id: string) => task(id)));
    expect(releaseTasks.map((t) => t.requestedBy).sort()).toEqual(['webhook:acme-github/all-acme-pushes', 'webhook:acme-github/release-branches']);
    expect(releaseTasks.find((t) => t.requestedBy.endsWith('/release-branches'))).toMatchObject({ queue: 'BATCH', priority: 10 });

    // release/* stays within one segment.
    const nested = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/release/2024/06'));
    expect(nested.body).toMatchObject({ status: 'IGNORED', taskIds: [] });

    const tag = await github(sources.gh, 'push', ghTagPush('acme/app', 'v1.2.0'));
    expect(tag.body).toMatchObject({ status: 'PROCESSED', event: 'tag' });
    expect(tag.body.taskIds).toHaveLength(1);
    expect(await task(tag.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:acme-github/tags', priority: 70, source: 'WEBHOOK' });
    expect((await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: tag.body.deliveryId } })).ref).toBe('v1.2.0');

    const otherTag = await github(sources.gh, 'push', ghTagPush('acme/app', 'build-77'));
    expect(otherTag.body).toMatchObject({ status: 'IGNORED', event: 'tag', taskIds: [] });
    // Deleting a branch or a tag is a push too (all-zero `after`, `deleted: true`): it fires no push or tag rule.
    const deletion = { after: '0000000000000000000000000000000000000000', deleted: true, commits: [], head_commit: null };
    const branchDeleted = await github(sources.gh, 'push', ghPush('acme/app', 'refs/heads/release/2024.06', deletion));
    expect(branchDeleted.body).toMatchObject({ status: 'IGNORED', event: 'push.deleted', taskIds: [] });
    const tagDeleted = await github(sources.gh, 'push', ghPush('acme/app', 'refs/tags/v1.2.0', deletion));
    expect(tagDeleted.body).toMatchObject({ status: 'IGNORED', event: 'tag.deleted', taskIds: [] });
    // Repository names are matched ignoring case, as GitHub treats them; refs are not.
    const upper = await github(sources.gh, 'push', ghPush('Acme/App', 'refs/heads/release/2024.07'));
    expect(upper.body).toMatchObject({ status: 'PROCESSED', event: 'push' });
    expect(upper.body.taskIds).toHaveLength(2);
    const upperRef = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/Release/2024.07'));
    expect(upperRef.body).toMatchObject({ status: 'IGNORED', taskIds: [] });
    // A repository outside acme/*: no rule fires.
    const foreign = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/main'));
    expect(foreign.body).toMatchObject({ status: 'IGNORED', event: 'push', taskIds: [] });
    // An event no rule names.
    const issue = await github(sources.gh, 'issues', { action: 'opened', issue: { number: 1, title: 'Bug' }, repository: ghRepository('acme/app'), sender: ghSender });
    expect(issue.body).toMatchObject({ status: 'IGNORED', event: 'issues', taskIds: [] });
  });

  it('matches pull requests by action and base branch', async () => {
    const opened = await github(sources.gh, 'pull_request', ghPullRequest('opened', 'acme/app', 'release/2024.06'));
    expect(opened.body).toMatchObject({ status: 'PROCESSED', event: 'pull_request.opened' });
    expect(opened.body.taskIds).toHaveLength(1);
    expect(await task(opened.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:acme-github/pr-to-release', queue: 'CRITICAL' });
    const delivery = await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: opened.body.deliveryId } });
    expect(delivery.ref).toBe('release/2024.06'); // base.ref, not the head branch

    const toMain = await github(sources.gh, 'pull_request', ghPullRequest('opened', 'acme/app', 'main', 'release/2024.06'));
    expect(toMain.body).toMatchObject({ status: 'IGNORED', event: 'pull_request.opened' });
    const sync = await github(sources.gh, 'pull_request', ghPullRequest('synchronize', 'acme/app', 'release/2024.06'));
    expect(sync.body).toMatchObject({ status: 'IGNORED', event: 'pull_request.synchronize' });
    // GitHub reports a merge as `closed` with `merged: true`: told apart from a pull request closed unmerged.
    const merged = await github(sources.gh, 'pull_request', ghPullRequest('closed', 'acme/app', 'release/2024.06'));
    expect(merged.body).toMatchObject({ status: 'IGNORED', event: 'pull_request.merged' });
    const abandoned = await github(sources.gh, 'pull_request', ghPullRequest('closed', 'acme/app', 'release/2024.06', 'feature/einstein', false));
    expect(abandoned.body).toMatchObject({ status: 'IGNORED', event: 'pull_request.closed' });
    // A malformed action (an object where GitHub sends a name) counts as none.
    const odd = await github(sources.gh, 'pull_request', { ...ghPullRequest('opened', 'acme/app', 'release/2024.06'), action: { name: 'opened' } });
    expect(odd.body).toMatchObject({ status: 'IGNORED', event: 'pull_request.unknown' });
  });

  it('does not fire a disabled rule', async () => {
    const on = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/hotfix/INC-1'));
    expect(on.body).toMatchObject({ status: 'PROCESSED' });
    expect(on.body.taskIds).toHaveLength(1);
    await data(`mutation($id: ID!) { updateWebhookRule(id: $id, enabled: false) { __typename } }`, { id: rules.ghHotfix });
    const before = await counts();
    const off = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/hotfix/INC-2'));
    expect(off.body).toMatchObject({ status: 'IGNORED', taskIds: [] });
    expect((await counts()).tasks).toBe(before.tasks);
    expect((await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: off.body.deliveryId } })).matchedRuleIds).toEqual([]);
  });

  it('records a rule that cannot create its task as FAILED', async () => {
    const removed = await data(`mutation { removeOrg(alias: "doomed") { __typename ${errorFields} } }`);
    expect(removed.removeOrg.__typename).toBe('RemoveOrgSuccess');
    const res = await github(sources.gh, 'push', ghPush('initech/app', 'refs/heads/main'));
    expect(res).toMatchObject({ status: 200, body: { status: 'FAILED', taskIds: [] } });
    expect(res.body.error).toMatch(/^rule doomed-cleanup: /);
  });

  it('records a delivery whose rules create tasks while the queue is unavailable (Redis down), its tasks QUEUED for a worker to queue once it is back', async () => {
    // GitHub never delivers again by itself: a delivery refused during a Redis outage would be a push lost.
    // A replica of this API whose Redis is not there (nothing listens on port 1).
    const down = await startTestApi('webhooks_down', { shareWith: api, redisUrl: 'redis://127.0.0.1:1' });
    const recorded: string[] = [];
    try {
      for (const queue of ['CRITICAL', 'NORMAL', 'BATCH'] as const) down.queues.get(queue).on('error', () => {});
      const delivery = randomUUID();
      const payload = ghPush('acme/app', 'refs/heads/release/2.0'); // release-branches and all-acme-pushes match
      const accepted = await github(sources.gh, 'push', payload, delivery, down);
      expect(accepted).toMatchObject({ status: 200, body: { duplicate: false, status: 'PROCESSED', queuedLater: true } });
      recorded.push(accepted.body.deliveryId);
      const taskIds = (accepted.body.taskIds as string[]).map((id) => rawId(id, 'Task')!);
      expect(taskIds).toHaveLength(2);
      const tasks = await api.prisma.task.findMany({ where: { id: { in: taskIds } } });
      expect(tasks.map((t) => t.status)).toEqual(['QUEUED', 'QUEUED']);
      const jobs = async () => Promise.all(tasks.map((t) => api.queues.get(t.queue).getJob(t.jobId!)));
      expect(await jobs()).toEqual([undefined, undefined]);
      expect(down.logLines.join('')).toContain('its tasks wait for the task queue (Redis)');
      // Without Redis, a copy under another delivery id is still that delivery: no second set of tasks.
      const copy = await github(sources.gh, 'push', payload, randomUUID(), down);
      expect(copy).toMatchObject({ status: 200, body: { duplicate: true, deliveryId: accepted.body.deliveryId, taskIds: accepted.body.taskIds } });
      // A delivery no rule matches needs no queue: recorded as usual.
      const ignored = await github(sources.gh, 'push', ghPush('nobody/app', 'refs/heads/main'), randomUUID(), down);
      expect(ignored).toMatchObject({ status: 200, body: { status: 'IGNORED', taskIds: [] } });
      expect(ignored.body.queuedLater).toBeUndefined();
      recorded.push(ignored.body.deliveryId);

      // Redis is back: a worker's reconciliation queues them (SWITCHYARD_RECONCILE_INTERVAL_MS).
      const report = await reconcileTasks({
        prisma: api.prisma,
        queues: api.queues,
        lifecycle: new TaskLifecycle(api.prisma, api.services.journal),
        isRunningTask: async () => false,
        workerGraceMs: 0,
        logger: pino({ level: 'silent' }),
      });
      expect(report.requeued).toEqual(expect.arrayContaining(taskIds));
      expect((await jobs()).map((job) => job?.data.taskId)).toEqual(tasks.map((t) => t.id));
      // The sender delivering it again (GitHub's "Redeliver": the same GUID) gets the same delivery.
      const again = await github(sources.gh, 'push', payload, delivery);
      expect(again).toMatchObject({ status: 200, body: { duplicate: true, deliveryId: accepted.body.deliveryId, taskIds: accepted.body.taskIds } });
    } finally {
      await down.close();
      // Out of the way of the listing tests below, which expect exactly the deliveries they know of.
      await api.prisma.webhookDelivery.deleteMany({ where: { id: { in: recorded } } });
    }
  });

  it('records a delivery holding NUL or an unpaired surrogate, which Postgres cannot store, with U+FFFD in their place', async () => {
    const payload = ghPush('acme/app', 'refs/heads/main', { head_commit: { id: 'a'.repeat(40), message: 'fix\u0000 the build \ud800' } });
    const res = await github(sources.gh, 'push', payload);
    expect(res).toMatchObject({ status: 200, body: { duplicate: false, status: 'PROCESSED', event: 'push' } });
    const delivery = await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: res.body.deliveryId } });
    expect((delivery.payload as any).head_commit.message).toBe('fix\uFFFD the build \uFFFD');
    // Still known by the body that was signed: the same delivery again is a duplicate.
    expect((await github(sources.gh, 'push', payload, delivery.deliveryKey)).body).toMatchObject({ duplicate: true, deliveryId: delivery.id });
  });

  it('answers a repeated X-GitHub-Delivery with the first outcome and creates nothing more', async () => {
    const delivery = randomUUID();
    const payload = ghPush('acme/app', 'refs/heads/main');
    const first = await github(sources.gh, 'push', payload, delivery);
    expect(first.body).toMatchObject({ duplicate: false, status: 'PROCESSED' });
    const before = await counts();
    const again = await github(sources.gh, 'push', payload, delivery);
    expect(again).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });
    // GitHub's "Redeliver" resends the same GUID; even another body is the same delivery.
    const redelivered = await github(sources.gh, 'push', ghPush('acme/app', 'refs/heads/release/x'), delivery);
    expect(redelivered.body).toMatchObject({ deliveryId: first.body.deliveryId, duplicate: true, taskIds: first.body.taskIds });
    expect(await counts()).toEqual(before);
  });

  it('answers a copy of a delivery under another X-GitHub-Delivery as that delivery: the id is not signed', async () => {
    const payload = ghPush('acme/app', 'refs/heads/main');
    const first = await github(sources.gh, 'push', payload);
    expect(first.body).toMatchObject({ duplicate: false, status: 'PROCESSED' });
    const before = await counts();
    const copy = await github(sources.gh, 'push', payload, randomUUID());
    expect(copy).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });
    expect(await counts()).toEqual(before);
    // Known by the signature recorded with it, for as long as the delivery log keeps it (GitHub's never expires).
    const signature = githubSignature(sources.gh.secret, JSON.stringify(payload)).slice('sha256='.length);
    expect(await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: first.body.deliveryId } })).toMatchObject({ signature });
    // The next push is another body, so a delivery of its own.
    const next = await github(sources.gh, 'push', ghPush('acme/app', 'refs/heads/main'));
    expect(next.body).toMatchObject({ duplicate: false, status: 'PROCESSED' });
    expect(next.body.deliveryId).not.toBe(first.body.deliveryId);
  });

  it('answers concurrent copies of one delivery with the same outcome', async () => {
    const delivery = randomUUID();
    const payload = ghPush('acme/app', 'refs/heads/main');
    const before = await counts();
    const answers = await Promise.all([1, 2, 3].map(() => github(sources.gh, 'push', payload, delivery)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(1);
    const first = answers.find((a) => !a.body.duplicate)!.body;
    for (const answer of answers) expect(answer.body).toMatchObject({ deliveryId: first.deliveryId, status: 'PROCESSED', taskIds: first.taskIds });
    expect((await counts()).tasks).toBe(before.tasks + 2);
    expect((await counts()).deliveries).toBe(before.deliveries + 1);
  });
});

describe('GitLab deliveries', () => {
  it('turns Push, Tag Push and Merge Request Hooks into events and fires matching rules', async () => {
    const push = await gitlab(sources.gl, 'Push Hook', glPush('acme/app', 'refs/heads/main'));
    expect(push).toMatchObject({ status: 200, body: { status: 'PROCESSED', event: 'push', duplicate: false } });
    expect(await task(push.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:acme-gitlab/gl-main', priority: 80, source: 'WEBHOOK', queue: 'NORMAL' });
    const feature = await gitlab(sources.gl, 'Push Hook', glPush('acme/app', 'refs/heads/feature/x'));
    expect(feature.body).toMatchObject({ status: 'IGNORED', event: 'push' });
    // A deleted branch or tag arrives as a Push or Tag Push Hook whose `after` is all zeros.
    const zero = '0000000000000000000000000000000000000000';
    const branchDeleted = await gitlab(sources.gl, 'Push Hook', { ...glPush('acme/app', 'refs/heads/main'), after: zero, checkout_sha: null, commits: [] });
    expect(branchDeleted.body).toMatchObject({ status: 'IGNORED', event: 'push.deleted', taskIds: [] });
    const tagDeleted = await gitlab(sources.gl, 'Tag Push Hook', { ...glPush('acme/app', 'refs/tags/v1.0.0', true), before: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7', after: zero, checkout_sha: null });
    expect(tagDeleted.body).toMatchObject({ status: 'IGNORED', event: 'tag.deleted', taskIds: [] });
    // acme/* does not reach into subgroups.
    const subgroup = await gitlab(sources.gl, 'Push Hook', glPush('acme/platform/app', 'refs/heads/main'));
    expect(subgroup.body).toMatchObject({ status: 'IGNORED', event: 'push' });

    const tag = await gitlab(sources.gl, 'Tag Push Hook', glPush('acme/app', 'refs/tags/v1.0.0', true));
    expect(tag.body).toMatchObject({ status: 'PROCESSED', event: 'tag' });
    expect(await task(tag.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:acme-gitlab/gl-tags' });
    const row = await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: tag.body.deliveryId } });
    expect(row).toMatchObject({ repository: 'acme/app', ref: 'v1.0.0', event: 'tag' });

    const mr = await gitlab(sources.gl, 'Merge Request Hook', glMergeRequest('open', 'acme/app', 'main'));
    expect(mr.body).toMatchObject({ status: 'PROCESSED', event: 'merge_request.open' });
    expect(await task(mr.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:acme-gitlab/gl-mr' });
    const update = await gitlab(sources.gl, 'Merge Request Hook', glMergeRequest('update', 'acme/app', 'main'));
    expect(update.body).toMatchObject({ status: 'IGNORED', event: 'merge_request.update' });
    const otherTarget = await gitlab(sources.gl, 'Merge Request Hook', glMergeRequest('open', 'acme/app', 'develop'));
    expect(otherTarget.body).toMatchObject({ status: 'IGNORED', event: 'merge_request.open' });
  });

  it('de-duplicates on Idempotency-Key, and on X-Gitlab-Event-UUID when there is none', async () => {
    const uuid = randomUUID();
    const first = await gitlab(sources.gl, 'Push Hook', glPush('acme/app', 'refs/heads/main'), { uuid });
    expect(first.body).toMatchObject({ status: 'PROCESSED', duplicate: false });
    const before = await counts();
    const again = await gitlab(sources.gl, 'Push Hook', glPush('acme/app', 'refs/heads/main'), { uuid });
    expect(again).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });

    const key = randomUUID();
    const keyed = await gitlab(sources.gl, 'Tag Push Hook', glPush('acme/app', 'refs/tags/v2.0.0', true), { idempotencyKey: key });
    expect(keyed.body).toMatchObject({ status: 'PROCESSED', duplicate: false });
    const keyedAgain = await gitlab(sources.gl, 'Tag Push Hook', glPush('acme/app', 'refs/tags/v2.0.0', true), { idempotencyKey: key });
    expect(keyedAgain.body).toMatchObject({ ...keyed.body, duplicate: true });
    // GitLab sends both: a delivery sent again keeps its Idempotency-Key and gets a new X-Gitlab-Event-UUID.
    const resendKey = randomUUID();
    const sent = await gitlab(sources.gl, 'Tag Push Hook', glPush('acme/app', 'refs/tags/v2.1.0', true), { uuid: randomUUID(), idempotencyKey: resendKey });
    expect(sent.body).toMatchObject({ status: 'PROCESSED', duplicate: false });
    const resent = await gitlab(sources.gl, 'Tag Push Hook', glPush('acme/app', 'refs/tags/v2.1.0', true), { uuid: randomUUID(), idempotencyKey: resendKey });
    expect(resent.body).toMatchObject({ ...sent.body, duplicate: true });
    const after = await counts();
    expect(after.tasks).toBe(before.tasks + 2);
    expect(after.deliveries).toBe(before.deliveries + 2);

    // Delivery ids are per source: the same id at another source is a new delivery.
    const elsewhere = await github(sources.gh, 'push', ghPush('globex/app', 'refs/heads/main'), uuid);
    expect(elsewhere.body.duplicate).toBe(false);
  });

  it('refuses a wrong X-Gitlab-Token', async () => {
    const before = await counts();
    const res = await gitlab({ ...sources.gl, secret: `${sources.gl.secret}x` }, 'Push Hook', glPush('acme/app', 'refs/heads/main'));
    expect(res).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    expect(await counts()).toEqual(before);
  });
});

describe('Salesforce and CI sources', () => {
  const sfEvent = (replayId: number) => ({
    eventName: 'Release_Ready__e',
    replayId,
    schema: 'Q_EAgmsHa_TzIiDYtsRZRbQ',
    payload: { Release__c: '2024.06', Sandbox__c: 'uat', CreatedDate: '2024-06-03T07:15:27.000Z', CreatedById: '005Dn000003pBGtIAM' },
  });

  it('accepts a fresh signature and refuses old, future and wrong ones', async () => {
    const ok = await timestamped(sources.sf, sfEvent(101));
    expect(ok).toMatchObject({ status: 200, body: { status: 'PROCESSED', event: 'Release_Ready__e', duplicate: false } });
    expect(await task(ok.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:prod-events/release-ready', source: 'WEBHOOK' });
    const sfId = rawId(sources.sf.id, 'WebhookSource')!;
    const before = await counts();
    const staleBefore = await rejected(`${sfId}:STALE_TIMESTAMP`);
    const now = Math.floor(Date.now() / 1000);
    const old = await timestamped(sources.sf, sfEvent(102), { t: now - 6 * 60 });
    expect(old).toMatchObject({ status: 401, body: { error: { code: 'STALE_TIMESTAMP' } } });
    const future = await timestamped(sources.sf, sfEvent(103), { t: now + 60 });
    expect(future.status).toBe(401);
    expect(future.body.error.code).toBe('STALE_TIMESTAMP');
    expect(await rejected(`${sfId}:STALE_TIMESTAMP`)).toBe(staleBefore + 2);
    const wrong = await timestamped(sources.sf, sfEvent(104), { secret: sources.ci.secret });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    const unsigned = await post(sources.sf.path, JSON.stringify(sfEvent(105)), {});
    expect(unsigned).toMatchObject({ status: 401, body: { error: { code: 'INVALID_SIGNATURE' } } });
    // GitHub's header on a timestamped source is no signature.
    const body = JSON.stringify(sfEvent(106));
    const githubStyle = await post(sources.sf.path, body, { 'x-hub-signature-256': githubSignature(sources.sf.secret, body) });
    expect(githubStyle.status).toBe(401);
    expect(await rejected(`${sfId}:BAD_SIGNATURE`)).toBe(1);
    expect(await rejected(`${sfId}:MISSING_SIGNATURE`)).toBe(2);
    expect(await counts()).toEqual(before);
  });

  it('treats a replay of the same signed request as a duplicate', async () => {
    // With X-Switchyard-Delivery…
    const body = JSON.stringify(sfEvent(201));
    const headers = { 'x-switchyard-signature': signTimestamped(sources.sf.secret, body), 'x-switchyard-delivery': 'relay-201' };
    const first = await post(sources.sf.path, body, headers);
    expect(first.body).toMatchObject({ status: 'PROCESSED', duplicate: false });
    const before = await counts();
    const replay = await post(sources.sf.path, body, headers);
    expect(replay).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });
    // The delivery id is not signed: the same signed request under another id is still that delivery.
    const renamed = await post(sources.sf.path, body, { ...headers, 'x-switchyard-delivery': 'relay-201-again' });
    expect(renamed).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });
    const keyed = await post(sources.sf.path, body, { 'x-switchyard-signature': headers['x-switchyard-signature'], 'idempotency-key': 'other' });
    expect(keyed).toMatchObject({ status: 200, body: { ...first.body, duplicate: true } });
    // …and without any id: the body hash is the key.
    const ciBody = JSON.stringify({ status: 'success', repository: 'acme/app', ref: 'feature/x', buildNumber: 7 });
    const ciHeaders = { 'x-switchyard-signature': signTimestamped(sources.ci.secret, ciBody) };
    const ciFirst = await post(sources.ci.path, ciBody, ciHeaders);
    expect(ciFirst.body).toMatchObject({ status: 'IGNORED', duplicate: false, event: 'success' });
    const ciReplay = await post(sources.ci.path, ciBody, ciHeaders);
    expect(ciReplay.body).toMatchObject({ deliveryId: ciFirst.body.deliveryId, duplicate: true });
    const row = await api.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: ciFirst.body.deliveryId } });
    expect(row.deliveryKey).toMatch(/^sha256:[0-9a-f]{64}$/);
    const after = await counts();
    expect(after.tasks).toBe(before.tasks);
    expect(after.deliveries).toBe(before.deliveries + 1);
    // The same body signed anew (another second) under a new id is a new delivery: the sender sent it again on purpose.
    const resigned = await post(sources.sf.path, body, {
      'x-switchyard-signature': signTimestamped(sources.sf.secret, body, Math.floor(Date.now() / 1000) - 2),
      'x-switchyard-delivery': 'relay-201-resent',
    });
    expect(resigned).toMatchObject({ status: 200, body: { duplicate: false, status: 'PROCESSED' } });
    expect(resigned.body.deliveryId).not.toBe(first.body.deliveryId);
  });

  it('takes a blank delivery id for none, so different deliveries are not duplicates of each other', async () => {
    // What a CI job sends when the variable meant for X-Switchyard-Delivery was not set.
    const first = await timestamped(sources.ci, { status: 'unstable', repository: 'acme/app', ref: 'feature/y', buildNumber: 11 }, { delivery: '' });
    const second = await timestamped(sources.ci, { status: 'unstable', repository: 'acme/app', ref: 'feature/y', buildNumber: 12 }, { delivery: ' ' });
    expect(first.body).toMatchObject({ duplicate: false, event: 'unstable' });
    expect(second.body).toMatchObject({ duplicate: false, event: 'unstable' });
    expect(second.body.deliveryId).not.toBe(first.body.deliveryId);
  });

  it('fires CI rules on a status and attaches a callback with taskId to that task as a LOG event', async () => {
    const green = await timestamped(sources.ci, { status: 'success', repository: 'acme/app', ref: 'main', buildNumber: 8 });
    expect(green.body).toMatchObject({ status: 'PROCESSED', event: 'success' });
    expect(await task(green.body.taskIds[0])).toMatchObject({ requestedBy: 'webhook:jenkins/ci-green-main', source: 'WEBHOOK' });

    const target = await task(green.body.taskIds[0]);
    const eventsBefore = target.events.edges.length;
    const callback = { taskId: target.id, status: 'failure', message: 'Apex tests failed: 3 of 412', url: 'https://ci.example.com/job/sf-validate/8/' };
    const res = await timestamped(sources.ci, callback, { delivery: 'jenkins-8-callback' });
    expect(res).toMatchObject({ status: 200, body: { status: 'PROCESSED', event: 'failure', taskIds: [] } });
    const after = await task(target.id);
    expect(after.events.edges).toHaveLength(eventsBefore + 1);
    expect(after.events.edges.at(-1).node).toMatchObject({
      seq: eventsBefore + 1,
      kind: 'LOG',
      payload: { level: 'warn', source: 'ci', ciStatus: 'failure', message: 'Apex tests failed: 3 of 412', url: 'https://ci.example.com/job/sf-validate/8/' },
    });
    expect(after.status).toBe(target.status);
    // The same callback again is a duplicate: no second LOG event.
    expect((await timestamped(sources.ci, callback, { delivery: 'jenkins-8-callback' })).body.duplicate).toBe(true);
    expect((await task(target.id)).events.edges).toHaveLength(eventsBefore + 1);

    const unknown = await timestamped(sources.ci, { ...callback, taskId: randomUUID() });
    expect(unknown.body).toMatchObject({ status: 'FAILED', error: 'taskId: no such task' });
  });
});

describe('replicas, cached rules and batched writes', () => {
  // A second API replica on the same schema, Redis prefix and secret store.
  let apiB: TestApi;
  beforeAll(async () => {
    apiB = await startTestApi('webhooks_b', { shareWith: api });
  });
  afterAll(async () => {
    await apiB?.close();
  });

  async function githubTo(target: TestApi, source: Source, payload: unknown, delivery: string = randomUUID()) {
    const body = JSON.stringify(payload);
    const res = await fetch(`${target.url}${source.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': githubSignature(source.secret, body) },
      body,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  // Each change below must reach replica B within 5 s: far below the 30 s a replica may cache a source when it
  // misses the news.
  it('a rule created, disabled or deleted on one replica takes effect on the other at once, not after its cache expires', async () => {
    const source = await createSource('GITHUB', 'replicated-rules');
    const main = () => ghPush('acme/app', 'refs/heads/main');
    // Replica B reads and caches the source while it has no rules.
    expect((await githubTo(apiB, source, main())).body).toMatchObject({ status: 'IGNORED' });

    const ruleId = await createRule(source, { name: 'replicated', event: 'push', ref: 'main' }); // on replica A
    await waitFor(async () => (await githubTo(apiB, source, main())).body.status === 'PROCESSED', 5000, 'the change to reach replica B');

    await data(`mutation($id: ID!) { updateWebhookRule(id: $id, enabled: false) { __typename } }`, { id: ruleId });
    await waitFor(async () => (await githubTo(apiB, source, main())).body.status === 'IGNORED', 5000, 'the change to reach replica B');

    await data(`mutation($id: ID!) { updateWebhookRule(id: $id, enabled: true) { __typename } }`, { id: ruleId });
    await waitFor(async () => (await githubTo(apiB, source, main())).body.status === 'PROCESSED', 5000, 'the change to reach replica B');
    await data(`mutation($id: ID!) { deleteWebhookRule(id: $id) { __typename } }`, { id: ruleId });
    await waitFor(async () => (await githubTo(apiB, source, main())).body.status === 'IGNORED', 5000, 'the change to reach replica B');
  });

  it('a secret rotated on one replica is refused by the other at once', async () => {
    const source = await createSource('GITHUB', 'replicated-secret');
    const payload = ghPush('acme/app', 'refs/heads/feature/y');
    expect((await githubTo(apiB, source, payload)).status).toBe(200); // B has the secret cached
    const rotated = await data(
      `mutation($id: ID!) { rotateWebhookSecret(id: $id) { __typename ... on RotateWebhookSecretSuccess { created { secret } } ${errorFields} } }`,
      { id: source.id },
    );
    const secret = rotated.rotateWebhookSecret.created.secret;
    await waitFor(async () => (await githubTo(apiB, source, payload)).status === 401, 5000, 'the change to reach replica B');
    expect((await githubTo(apiB, { ...source, secret }, payload)).status).toBe(200);
  });

  it('copies of one signed delivery under six delivery ids, sent to both replicas at once, are recorded once', async () => {
    const payload = ghPush('acme/app', 'refs/heads/main'); // fires the rules main and all-acme-pushes
    const before = await counts();
    const answers = await Promise.all([api, apiB, api, apiB, api, apiB].map((target) => githubTo(target, sources.gh, payload, randomUUID())));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(1);
    const first = answers.find((a) => !a.body.duplicate)!.body;
    expect(first.taskIds).toHaveLength(2);
    for (const answer of answers) expect(answer.body).toMatchObject({ deliveryId: first.deliveryId, status: 'PROCESSED', taskIds: first.taskIds });
    const after = await counts();
    expect(after.deliveries).toBe(before.deliveries + 1);
    expect(after.tasks).toBe(before.tasks + 2);
  });

  it('one delivery sent to both replicas at once is recorded once, with one set of tasks', async () => {
    const delivery = randomUUID();
    const payload = ghPush('acme/app', 'refs/heads/main'); // fires the rules main and all-acme-pushes
    const before = await counts();
    const answers = await Promise.all([api, apiB, api, apiB, api, apiB].map((target) => githubTo(target, sources.gh, payload, delivery)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(answers.filter((a) => !a.body.duplicate)).toHaveLength(1);
    const first = answers.find((a) => !a.body.duplicate)!.body;
    expect(first).toMatchObject({ status: 'PROCESSED' });
    expect(first.taskIds).toHaveLength(2);
    for (const answer of answers) expect(answer.body).toMatchObject({ deliveryId: first.deliveryId, status: 'PROCESSED', taskIds: first.taskIds });
    const after = await counts();
    expect(after.deliveries).toBe(before.deliveries + 1);
    expect(after.tasks).toBe(before.tasks + 2);
    expect(await api.prisma.task.count({ where: { id: { in: first.taskIds }, jobId: { not: null }, status: 'QUEUED' } })).toBe(2);
  });

  it('deliveries accepted together are written together, yet each gets its own outcome; one Postgres refuses fails alone', async () => {
    const { webhooks } = api.services;
    const config = (await webhooks.sourceForDelivery('GITHUB', sources.gh.id))!;
    const send = (payload: unknown) => {
      const body = Buffer.from(JSON.stringify(payload));
      return webhooks.accept(config, normalise('GITHUB', { 'x-github-event': 'push', 'x-github-delivery': randomUUID() }, payload as Record<string, unknown>, body), body);
    };
    const before = await counts();
    // Made in the same tick, so they go out as one batch.
    const settled = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => send(ghPush('acme/app', 'refs/heads/main'))), // 2 tasks each
      ...Array.from({ length: 10 }, (_, i) => send(ghPush('acme/app', `refs/heads/feature/batch-${i}`))), // 1 task each (all-acme-pushes)
      ...Array.from({ length: 10 }, (_, i) => send(ghPush('nobody/app', `refs/heads/feature/batch-${i}`))), // no rule
      // Valid JSON, but jsonb cannot hold \u0000: Postgres refuses this row, and with it the whole first statement.
      send({ ...ghPush('acme/app', 'refs/heads/main'), note: '\u0000' }),
    ]);
    const answers = settled.slice(0, 30).map((result) => (result as PromiseFulfilledResult<Awaited<ReturnType<typeof send>>>).value);
    expect(settled.slice(0, 30).every((result) => result.status === 'fulfilled')).toBe(true);
    expect(settled[30]!.status).toBe('rejected');
    expect(answers.map((a) => a.delivery.taskIds.length)).toEqual([...Array(10).fill(2), ...Array(10).fill(1), ...Array(10).fill(0)]);
    expect(answers.map((a) => a.delivery.status)).toEqual([...Array(20).fill('PROCESSED'), ...Array(10).fill('IGNORED')]);
    expect(new Set(answers.map((a) => a.delivery.id)).size).toBe(30);
    expect(new Set(answers.flatMap((a) => a.delivery.taskIds)).size).toBe(30);
    const after = await counts();
    expect(after.deliveries).toBe(before.deliveries + 30);
    expect(after.tasks).toBe(before.tasks + 30);
    // Every answer is what the log says, and every task is queued with its first event.
    const rows = await api.prisma.webhookDelivery.findMany({ where: { id: { in: answers.map((a) => a.delivery.id) } } });
    for (const answer of answers) expect(rows.find((row) => row.id === answer.delivery.id)).toMatchObject({ status: answer.delivery.status, taskIds: answer.delivery.taskIds, payloadTruncated: false });
    const taskIds = answers.flatMap((a) => a.delivery.taskIds);
    expect(await api.prisma.task.count({ where: { id: { in: taskIds }, status: 'QUEUED', source: 'WEBHOOK', jobId: { not: null } } })).toBe(30);
    expect(await api.prisma.taskEvent.count({ where: { taskId: { in: taskIds }, seq: 1, kind: 'STATUS' } })).toBe(30);
    const jobs = await Promise.all(taskIds.map(async (id) => (await api.prisma.task.findUniqueOrThrow({ where: { id } })).jobId!));
    const queued = await Promise.all((['CRITICAL', 'NORMAL'] as const).flatMap((queue) => jobs.map((jobId) => api.queues.get(queue).getJob(jobId))));
    expect(queued.filter(Boolean)).toHaveLength(30);
  });
});

describe('bad input', () => {
  async function expectNothingStored(send: () => Promise<Answer>, status: number, code: string, counterField?: string) {
    const before = await counts();
    const counterBefore = counterField ? await rejected(counterField) : 0;
    const all = await api.redis.hgetall(rejectedKey());
    const keys = await redisKeys();
    const answer = await send();
    expect(answer.status).toBe(status);
    expect(answer.contentType).toMatch(/^application\/json/);
    expect(answer.body.error.code).toBe(code);
    expect(typeof answer.body.error.message).toBe('string');
    expect(await counts()).toEqual(before);
    expect(await redisKeys()).toEqual(keys);
    const allAfter = await api.redis.hgetall(rejectedKey());
    if (counterField) {
      expect(await rejected(counterField)).toBe(counterBefore + 1);
      expect({ ...allAfter, [counterField]: undefined }).toEqual({ ...all, [counterField]: undefined });
    } else expect(allAfter).toEqual(all);
  }

  it('stores nothing but a counter for unknown sources and wrong signatures', async () => {
    const unknown = randomUUID();
    const body = JSON.stringify(ghPush('acme/app', 'refs/heads/main'));
    const signed = { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(sources.gh.secret, body) };
    await expectNothingStored(() => post(`/webhooks/github/${unknown}`, body, signed), 401, 'INVALID_SIGNATURE', 'unknown:UNKNOWN_SOURCE');
    // A source of another kind is unknown at this URL.
    const ghId = rawId(sources.gh.id, 'WebhookSource')!;
    await expectNothingStored(() => post(`/webhooks/gitlab/${ghId}`, body, { ...signed, 'x-gitlab-token': sources.gh.secret }), 401, 'INVALID_SIGNATURE', 'unknown:UNKNOWN_SOURCE');
    await expectNothingStored(() => post(`/webhooks/github/not-a-uuid`, body, signed), 401, 'INVALID_SIGNATURE', 'unknown:UNKNOWN_SOURCE');
    // Forged ids are the sender's choice: however many, they share one counter field.
    const fields = await api.redis.hlen(rejectedKey());
    const forged = await Promise.all(Array.from({ length: 20 }, () => post(`/webhooks/ci/${randomUUID()}`, body, { 'x-switchyard-signature': `t=1,v1=${'0'.repeat(64)}` })));
    expect(forged.map((answer) => answer.status)).toEqual(forged.map(() => 401));
    expect(await api.redis.hlen(rejectedKey())).toBe(fields);
    await expectNothingStored(
      () => post(sources.gh.path, body, { ...signed, 'x-hub-signature-256': githubSignature(sources.gl.secret, body) }),
      401,
      'INVALID_SIGNATURE',
      `${ghId}:BAD_SIGNATURE`,
    );
    await expectNothingStored(() => post(sources.gh.path, body, { 'x-github-event': 'push', 'x-github-delivery': randomUUID() }), 401, 'INVALID_SIGNATURE', `${ghId}:BAD_SIGNATURE`);
    // Signed over other bytes than were sent.
    await expectNothingStored(() => post(sources.gh.path, `${body} `, signed), 401, 'INVALID_SIGNATURE', `${ghId}:BAD_SIGNATURE`);
  });

  it('refuses bodies over 1 MiB with 413, declared or streamed', async () => {
    const big = JSON.stringify({ ...ghPush('acme/app', 'refs/heads/main'), padding: 'x'.repeat(1024 * 1024) });
    const headers = { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(sources.gh.secret, big) };
    await expectNothingStored(() => post(sources.gh.path, big, headers), 413, 'PAYLOAD_TOO_LARGE');
    // Chunked, without Content-Length: the limit applies while reading.
    const pieces = Array.from({ length: Math.ceil(big.length / (64 * 1024)) }, (_, i) => big.slice(i * 64 * 1024, (i + 1) * 64 * 1024));
    await expectNothingStored(() => postChunked(`${api.url}${sources.gh.path}`, { 'content-type': 'application/json', ...headers }, pieces), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses other media types with 415 and bad JSON after a valid signature with 400', async () => {
    const body = JSON.stringify(ghPush('acme/app', 'refs/heads/main'));
    const headers = { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(sources.gh.secret, body) };
    await expectNothingStored(() => post(sources.gh.path, body, headers, 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectNothingStored(() => post(sources.gh.path, `payload=${encodeURIComponent(body)}`, headers, 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect((await post(sources.gh.path, body, headers, 'application/json; charset=utf-8')).status).toBe(200);

    const broken = '{"ref":"refs/heads/main",';
    await expectNothingStored(
      () => post(sources.gh.path, broken, { ...headers, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(sources.gh.secret, broken) }),
      400,
      'MALFORMED_JSON',
    );
    await expectNothingStored(
      () => post(sources.gh.path, '[1,2]', { ...headers, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(sources.gh.secret, '[1,2]') }),
      400,
      'MALFORMED_JSON',
    );
    await expectNothingStored(() => post(sources.ci.path, broken, { 'x-switchyard-signature': signTimestamped(sources.ci.secret, broken) }), 400, 'MALFORMED_JSON');
    await expectNothingStored(() => post(sources.gl.path, broken, { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': sources.gl.secret }), 400, 'MALFORMED_JSON');
  });

  it('answers unknown routes and methods with JSON errors', async () => {
    const before = await counts();
    const bitbucket = await post(`/webhooks/bitbucket/${randomUUID()}`, '{}', {});
    expect(bitbucket).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    const extra = await post(`${sources.gh.path}/extra`, '{}', {});
    expect(extra).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    const get = await fetch(`${api.url}${sources.gh.path}`);
    expect(get.status).toBe(405);
    expect(((await get.json()) as any).error.code).toBe('METHOD_NOT_ALLOWED');
    expect(await counts()).toEqual(before);
  });
});

describe('webhookDeliveries', () => {
  it('filters by source, status and event, pages, and keeps payloads up to the cap', async () => {
    const pushPayload = ghPush('acme/app', 'refs/heads/main');
    const stored = await github(sources.gh, 'push', pushPayload);
    // Over the 64 KiB stored-payload cap, under the 1 MiB request limit: processed, payload not kept.
    const large = ghPush('acme/app', 'refs/heads/release/big', { commits: Array.from({ length: 400 }, (_, i) => ghCommit(`Commit ${i} ${'.'.repeat(200)}`)) });
    expect(JSON.stringify(large).length).toBeGreaterThan(64 * 1024);
    const truncated = await github(sources.gh, 'push', large);
    expect(truncated.body).toMatchObject({ status: 'PROCESSED' });

    const query = `query($filter: WebhookDeliveryFilter, $first: Int, $after: String) { webhookDeliveries(filter: $filter, first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { id deliveryKey event repository ref status verified matchedRuleIds taskIds payload payloadTruncated error receivedAt source { id } } } } }`;
    const all = await data(query, { filter: { sourceId: sources.gh.id }, first: 500 });
    const nodes = all.webhookDeliveries.edges.map((e: any) => e.node);
    expect(all.webhookDeliveries.totalCount).toBe(nodes.length);
    const ghId = rawId(sources.gh.id, 'WebhookSource')!;
    expect(nodes.length).toBe(await api.prisma.webhookDelivery.count({ where: { sourceId: ghId } }));
    expect(nodes.every((n: any) => n.source.id === sources.gh.id && n.verified === true)).toBe(true);
    const times = nodes.map((n: any) => Date.parse(n.receivedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a)); // newest first

    const storedNode = nodes.find((n: any) => rawId(n.id, 'WebhookDelivery') === stored.body.deliveryId);
    expect(storedNode).toMatchObject({ event: 'push', repository: 'acme/app', ref: 'main', status: 'PROCESSED', payloadTruncated: false });
    expect(storedNode.payload).toEqual(pushPayload);
    expect(storedNode.taskIds).toEqual(stored.body.taskIds);
    const truncatedNode = nodes.find((n: any) => rawId(n.id, 'WebhookDelivery') === truncated.body.deliveryId);
    expect(truncatedNode).toMatchObject({ payload: null, payloadTruncated: true, status: 'PROCESSED', ref: 'release/big' });

    const ignored = await data(query, { filter: { sourceId: sources.gh.id, status: ['IGNORED'], event: 'push' }, first: 500 });
    const ignoredNodes = ignored.webhookDeliveries.edges.map((e: any) => e.node);
    expect(ignoredNodes.length).toBeGreaterThan(2);
    expect(ignored.webhookDeliveries.totalCount).toBe(await api.prisma.webhookDelivery.count({ where: { sourceId: ghId, status: 'IGNORED', event: 'push' } }));
    expect(ignoredNodes.every((n: any) => n.status === 'IGNORED' && n.event === 'push')).toBe(true);
    const failed = await data(query, { filter: { status: ['FAILED'] }, first: 50 });
    const failedNodes = failed.webhookDeliveries.edges.map((e: any) => e.node);
    expect(failedNodes.map((n: any) => n.error.replace(/^(rule doomed-cleanup): .*$/, '$1')).sort()).toEqual(['rule doomed-cleanup', 'taskId: no such task']);
    expect(failedNodes.every((n: any) => n.status === 'FAILED')).toBe(true);
    const two = await data(query, { filter: { status: ['FAILED', 'IGNORED'], event: 'tag' }, first: 50 });
    expect(two.webhookDeliveries.edges.map((e: any) => e.node.event)).toEqual(two.webhookDeliveries.edges.map(() => 'tag'));
    expect(two.webhookDeliveries.totalCount).toBeGreaterThanOrEqual(1);
    const gl = await data(query, { filter: { sourceId: sources.gl.id, event: 'merge_request.open' }, first: 50 });
    expect(gl.webhookDeliveries.totalCount).toBe(2);

    // Pages of 3 walk the whole filtered list without gaps or repeats.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = await data(query, { filter: { sourceId: sources.gh.id }, first: 3, after });
      expect(page.webhookDeliveries.edges.length).toBeLessThanOrEqual(3);
      seen.push(...page.webhookDeliveries.edges.map((e: any) => e.node.id));
      if (!page.webhookDeliveries.pageInfo.hasNextPage) break;
      after = page.webhookDeliveries.pageInfo.endCursor;
    }
    expect(seen).toEqual(nodes.map((n: any) => n.id));

    // A viewer may read the log (without the sources, which need manageOrgs).
    const viewer = await api.token('VIEWER');
    const viewed = await data(`{ webhookDeliveries(filter: { status: [FAILED] }) { totalCount edges { node { event status } } } }`, {}, api, viewer);
    expect(viewed.webhookDeliveries.totalCount).toBe(2);
  });

  it('deletes deliveries past their retention when a replica starts, and an id seen again then is a new delivery', async () => {
    const sent = async (delivery: string) => (await timestamped(sources.ci, { status: 'retention', buildNumber: delivery }, { delivery })).body;
    const [old1, old2, old3, recent] = await Promise.all(['ret-1', 'ret-2', 'ret-3', 'ret-4'].map(sent));
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3_600_000);
    await api.prisma.webhookDelivery.updateMany({ where: { id: { in: [old1.deliveryId, old2.deliveryId, old3.deliveryId] } }, data: { receivedAt: twoDaysAgo } });
    const before = await counts();

    // In batches of two, until none is left.
    const cutoff = new Date(Date.now() - 24 * 3_600_000);
    expect(await api.services.webhooks.pruneDeliveries(cutoff, 2)).toBe(3);
    expect(await api.prisma.webhookDelivery.count({ where: { id: { in: [old1.deliveryId, old2.deliveryId, old3.deliveryId] } } })).toBe(0);
    expect(await api.prisma.webhookDelivery.count({ where: { id: recent.deliveryId } })).toBe(1);
    expect((await counts()).deliveries).toBe(before.deliveries - 3);

    // The same id again: a new delivery, not a duplicate of the deleted one.
    const again = await sent('ret-1');
    expect(again).toMatchObject({ duplicate: false });
    expect(again.deliveryId).not.toBe(old1.deliveryId);

    // A replica started with a retention of one day prunes as it starts: deliveries, and the records of
    // outbound notification attempts.
    await api.prisma.webhookDelivery.update({ where: { id: again.deliveryId }, data: { receivedAt: twoDaysAgo } });
    const created = await data(`mutation { createNotificationSubscriber(url: "https://hooks.example.com/pruned") { __typename ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } ${errorFields} } }`);
    const subscriberId = rawId(created.createNotificationSubscriber.created.subscriber.id, 'NotificationSubscriber')!;
    const attempt = (createdAt: Date) => ({ subscriberId, notificationId: randomUUID(), event: 'task.succeeded', attempt: 1, ok: true, responseStatus: 200, durationMs: 5, createdAt });
    const [oldAttempt, newAttempt] = [attempt(twoDaysAgo), attempt(new Date())];
    await api.prisma.notificationAttempt.createMany({ data: [oldAttempt, newAttempt] });
    const pruning = await startTestApi('webhooks_pruning', { shareWith: api, app: { webhookDeliveryRetentionDays: 1 } });
    try {
      await waitFor(async () => (await api.prisma.webhookDelivery.count({ where: { id: again.deliveryId } })) === 0, 5000, 'the pruning at start');
      await waitFor(async () => (await api.prisma.notificationAttempt.count({ where: { notificationId: oldAttempt.notificationId } })) === 0, 5000, 'the old attempt pruned');
      expect(await api.prisma.webhookDelivery.count({ where: { id: recent.deliveryId } })).toBe(1);
      expect(await api.prisma.notificationAttempt.count({ where: { notificationId: newAttempt.notificationId } })).toBe(1);
    } finally {
      await pruning.close();
      const removed = await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id: created.createNotificationSubscriber.created.subscriber.id });
      expect(removed.deleteNotificationSubscriber.__typename).toBe('DeleteNotificationSubscriberSuccess');
    }
  });
});

describe('outbound notifications', () => {
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ path: string; headers: IncomingHttpHeaders; body: string; at: number; answered: number }> = [];

  beforeAll(async () => {
    await notifySetup;
    let firstToA = true;
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const status = req.url === '/a' && firstToA ? 500 : 200;
        if (req.url === '/a') firstToA = false;
        received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), answered: status });
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"ok":true}' : '{"error":"try later"}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => receiver?.close(resolve));
  });

  it('records an attempt, and sends nothing, for a subscriber whose signing secret is gone from the store', async () => {
    const ntoken = await napi.token('OWNER');
    const created = await data(`mutation($url: String!) { createNotificationSubscriber(url: $url) { __typename ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`, { url: `${receiverUrl}/no-secret` }, napi, ntoken);
    const subscriberId = rawId(created.createNotificationSubscriber.created.subscriber.id, 'NotificationSubscriber')!;
    try {
      const row = await napi.prisma.notificationSubscriber.findUniqueOrThrow({ where: { id: subscriberId } });
      await napi.services.secrets.delete(row.secretRef);
      const notificationId = randomUUID();
      await napi.services.notifications.deliver({ subscriberId, notificationId, event: 'task.succeeded', payload: { event: 'task.succeeded', sentFor: randomUUID(), task: {} } } as never, 1);
      expect(await napi.prisma.notificationAttempt.findMany({ where: { notificationId }, select: { ok: true, responseStatus: true, error: true } })).toEqual([
        { ok: false, responseStatus: null, error: 'the signing secret is missing from the secret store: delete the subscriber and create it again' },
      ]);
      expect(received.some((r) => r.path === '/no-secret')).toBe(false);
    } finally {
      await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id: created.createNotificationSubscriber.created.subscriber.id }, napi, ntoken);
    }
  });

  it('signs, retries with backoff and records every attempt', async () => {
    const ntoken = await napi.token('OWNER');
    const registered = await data(
      `mutation { registerOrg(input: { alias: "dev", kind: DEVELOPER, credentials: { instanceUrl: "https://dev.my.salesforce.com", refreshToken: "5Aep861notify" } }) { __typename } }`,
      {},
      napi,
      ntoken,
    );
    expect(registered.registerOrg.__typename).toBe('RegisterOrgSuccess');
    const subscribe = `mutation($url: String!, $events: [String!]) { createNotificationSubscriber(url: $url, events: $events) { __typename
      ... on CreateNotificationSubscriberSuccess { created { secret subscriber { id url events enabled } } } ${errorFields} } }`;
    const a = (await data(subscribe, { url: `${receiverUrl}/a`, events: ['task.succeeded', 'task.failed'] }, napi, ntoken)).createNotificationSubscriber.created;
    expect(a.subscriber).toMatchObject({ url: `${receiverUrl}/a`, events: ['task.succeeded', 'task.failed'], enabled: true });
    expect(a.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const b = (await data(subscribe, { url: `${receiverUrl}/b`, events: ['deployment.completed', 'org.check_failed'] }, napi, ntoken)).createNotificationSubscriber.created;
    const invalid = await data(subscribe, { url: 'ftp://example.com/x', events: ['task.exploded'] }, napi, ntoken);
    expect(invalid.createNotificationSubscriber.__typename).toBe('ValidationError');
    expect(invalid.createNotificationSubscriber.fieldErrors.map((f: any) => f.path[0]).sort()).toEqual(['events', 'url']);
    // A password in the URL would be kept, shown to readers of the subscriber and sent along.
    const withCredentials = await data(subscribe, { url: 'https://user:pw@hooks.example.com/x' }, napi, ntoken);
    expect(withCredentials.createNotificationSubscriber).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: ['url'], message: 'must not contain a user name or password' }] });
    const secretRow = await napi.prisma.notificationSubscriber.findUniqueOrThrow({ where: { id: rawId(a.subscriber.id, 'NotificationSubscriber')! } });
    expect(JSON.stringify(secretRow)).not.toContain(a.secret);

    const submitted = await data(
      `mutation { submitTask(input: { type: DIAGNOSTIC, org: "dev", params: { steps: 1, stepMs: 1 } }) { __typename ... on SubmitTaskSuccess { task { id } } ${errorFields} } }`,
      {},
      napi,
      ntoken,
    );
    const taskId = submitted.submitTask.task.id;
    await waitFor(async () => (await napi.prisma.task.findUnique({ where: { id: rawId(taskId, 'Task')! } }))?.status === 'SUCCEEDED', 15_000, 'the task to succeed');

    const toA = await waitFor(async () => (received.filter((r) => r.path === '/a').length >= 2 ? received.filter((r) => r.path === '/a') : null), 15_000, 'the retry');
    expect(toA).toHaveLength(2);
    const [first, second] = toA as [(typeof toA)[0], (typeof toA)[0]];
    expect([first.answered, second.answered]).toEqual([500, 200]);
    expect(second.at - first.at).toBeGreaterThanOrEqual(900); // exponential backoff from 1 s
    for (const request of toA) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['x-switchyard-event']).toBe('task.succeeded');
      expect(request.headers['x-switchyard-delivery']).toBe(first.headers['x-switchyard-delivery']);
      const signature = request.headers['x-switchyard-signature'] as string;
      expect(verifyTimestamped(a.secret, Buffer.from(request.body), signature)).toMatchObject({ ok: true });
      expect(verifyTimestamped(b.secret, Buffer.from(request.body), signature)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
      expect(verifyTimestamped(a.secret, Buffer.from(`${request.body} `), signature).ok).toBe(false);
      const body = JSON.parse(request.body);
      expect(body).toMatchObject({
        id: first.headers['x-switchyard-delivery'],
        event: 'task.succeeded',
        sentFor: rawId(taskId, 'Task'),
        task: { id: rawId(taskId, 'Task'), type: 'DIAGNOSTIC', status: 'SUCCEEDED', org: 'dev', source: 'API', error: null },
      });
    }

    const attemptsQuery = `{ notificationSubscribers(first: 10) { totalCount edges { node { id url attempts(first: 10) { totalCount edges { node { notificationId event attempt ok responseStatus error durationMs } } } } } } }`;
    const listed = await waitFor(async () => {
      const result = await data(attemptsQuery, {}, napi, ntoken);
      const node = result.notificationSubscribers.edges.find((e: any) => e.node.id === a.subscriber.id)?.node;
      return node?.attempts.totalCount >= 2 ? result : null;
    }, 5000, 'the attempts to be recorded');
    const nodes = Object.fromEntries(listed.notificationSubscribers.edges.map((e: any) => [e.node.id, e.node]));
    const attempts = nodes[a.subscriber.id].attempts.edges.map((e: any) => e.node);
    // Newest first.
    expect(attempts).toMatchObject([
      { attempt: 2, ok: true, responseStatus: 200, error: null, event: 'task.succeeded', notificationId: first.headers['x-switchyard-delivery'] },
      { attempt: 1, ok: false, responseStatus: 500, error: 'HTTP 500', event: 'task.succeeded', notificationId: first.headers['x-switchyard-delivery'] },
    ]);
    // B's notification, had there been one, was queued with A's first and would have arrived before A's retry.
    expect(received.filter((r) => r.path === '/b')).toHaveLength(0);
    expect(nodes[b.subscriber.id].attempts.totalCount).toBe(0);
  });

  it('a subscriber added on one replica is notified of the next task another replica settles (cached lists dropped over pub/sub)', async () => {
    const ntoken = await napi.token('OWNER');
    const other = await startTestApi('webhooks_notify_b', { shareWith: napi });
    try {
      // A CANCELLED task (no subscriber wants task.cancelled yet), settled by this replica.
      const submitted = await data(
        `mutation { submitTask(input: { type: DIAGNOSTIC, org: "dev", params: { steps: 1, stepMs: 1 }, runAt: "${new Date(Date.now() + 3_600_000).toISOString()}" }) { __typename ... on SubmitTaskSuccess { task { id } } ${errorFields} } }`,
        {},
        napi,
        ntoken,
      );
      const taskId = rawId(submitted.submitTask.task.id, 'Task')!;
      const cancelled = await data(`mutation($id: ID!) { cancelTask(id: $id) { __typename } }`, { id: submitted.submitTask.task.id }, napi, ntoken);
      expect(cancelled.cancelTask.__typename).toBe('CancelTaskSuccess');
      const row = await napi.prisma.task.findUniqueOrThrow({ where: { id: taskId } });
      expect(row.status).toBe('CANCELLED');
      // The other replica reads its subscriber list now and keeps it (for 30 s unless told otherwise).
      await other.services.notifications.taskFinished(row);

      const subscribe = `mutation($url: String!, $events: [String!]) { createNotificationSubscriber(url: $url, events: $events) { __typename } }`;
      const created = await data(subscribe, { url: `${receiverUrl}/c`, events: ['task.cancelled'] }, napi, ntoken);
      expect(created.createNotificationSubscriber.__typename).toBe('CreateNotificationSubscriberSuccess');
      // Well within the 30 s the other replica would otherwise keep its old list.
      await waitFor(
        async () => {
          if (received.some((r) => r.path === '/c')) return true;
          await other.services.notifications.taskFinished(row);
          return null;
        },
        5000,
        'the other replica to notify the new subscriber',
      );
      const toC = received.find((r) => r.path === '/c')!;
      expect(JSON.parse(toC.body)).toMatchObject({ event: 'task.cancelled', sentFor: taskId, task: { status: 'CANCELLED' } });
    } finally {
      await other.close();
    }
  });

  it('lets one subscriber have at most two notifications under way: a slow one does not hold up the others', async () => {
    const ntoken = await napi.token('OWNER');
    // /slow requests are held until the test answers them; /fast ones are answered at once.
    const held: Array<() => void> = [];
    let slowSeen = 0;
    let mostHeld = 0;
    let fastArrived: { slowHeld: number } | null = null;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/slow') {
          slowSeen += 1;
          held.push(() => res.writeHead(200).end());
          mostHeld = Math.max(mostHeld, held.length);
        } else {
          fastArrived ??= { slowHeld: held.length };
          res.writeHead(200).end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const subscribe = `mutation($url: String!) { createNotificationSubscriber(url: $url, events: ["task.cancelled"]) { ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`;
    const ids: string[] = [];
    try {
      for (const path of ['/slow', '/fast']) ids.push((await data(subscribe, { url: `${base}${path}` }, napi, ntoken)).createNotificationSubscriber.created.subscriber.id);
      const [slow, fast] = ids.map((id) => rawId(id, 'NotificationSubscriber')!) as [string, string];
      const notification = (subscriberId: string) => ({ subscriberId, notificationId: randomUUID(), event: 'task.cancelled', payload: { event: 'task.cancelled', sentFor: randomUUID(), task: {} } });
      // Six for the slow subscriber: the worker has four slots, and without a share per subscriber they would take all.
      await napi.queues.notify(Array.from({ length: 6 }, () => notification(slow)));
      await waitFor(async () => (slowSeen >= 2 ? true : null), 5000, "the slow subscriber's first requests");
      await napi.queues.notify([notification(fast)]);
      await waitFor(async () => fastArrived, 5000, "the fast subscriber's notification, while the slow one holds its requests");
      expect(fastArrived).toEqual({ slowHeld: 2 });
      // Answered, the slow subscriber gets the rest, never more than two at a time.
      await waitFor(
        async () => {
          while (held.length > 0) held.shift()!();
          return slowSeen >= 6 ? true : null;
        },
        15_000,
        'the rest of the slow subscriber\'s notifications',
      );
      expect(mostHeld).toBe(2);
    } finally {
      while (held.length > 0) held.shift()!();
      await new Promise((resolve) => server.close(resolve));
      for (const id of ids) await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id }, napi, ntoken);
    }
  });

  it('sends, later, the notifications of a task that ended while Redis was unavailable (the workers\' reconciler), once', async () => {
    const ntoken = await napi.token('OWNER');
    const created = await data(
      `mutation($url: String!) { createNotificationSubscriber(url: $url, events: ["task.failed"]) { ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`,
      { url: `${receiverUrl}/outbox` },
      napi,
      ntoken,
    );
    // A replica of the same API whose Redis is unreachable: the task it ends cannot have its notifications queued.
    const cutOff = await startTestApi('webhooks_notify_cut', { shareWith: napi, redisUrl: 'redis://127.0.0.1:1' });
    try {
      const submitted = await data(`mutation { submitTask(input: { type: DIAGNOSTIC, org: "dev" }) { __typename ${errorFields} } }`, {}, cutOff, ntoken);
      expect(submitted.submitTask).toMatchObject({ __typename: 'UnavailableError', code: 'QUEUE_UNAVAILABLE' });
      const ended = await napi.prisma.task.findFirstOrThrow({ where: { errorCode: 'QUEUE_UNAVAILABLE' }, orderBy: { createdAt: 'desc' } });
      expect(ended).toMatchObject({ status: 'FAILED', notificationsPending: true });
      expect(cutOff.logLines.join('\n')).toContain('the notifications of a finished task could not be queued now: a worker queues them later');
      // A worker's reconciliation leaves a task that ended just now to its settler…
      await worker.host.reconcile();
      expect((await napi.prisma.task.findUniqueOrThrow({ where: { id: ended.id } })).notificationsPending).toBe(true);
      // …and queues the notifications of one that ended a while ago (backdated here).
      await napi.prisma.task.update({ where: { id: ended.id }, data: { finishedAt: new Date(Date.now() - 120_000) } });
      await worker.host.reconcile();
      const sent = await waitFor(async () => received.find((r) => r.path === '/outbox') ?? null, 10_000, 'the missed notification');
      expect(JSON.parse(sent.body)).toMatchObject({ event: 'task.failed', sentFor: ended.id, task: { id: ended.id, status: 'FAILED', error: { code: 'QUEUE_UNAVAILABLE' } } });
      expect(worker.logLines.join('\n')).toContain('queued the notifications of tasks that ended without them');
      const notified = await napi.prisma.task.findUniqueOrThrow({ where: { id: ended.id } });
      expect(notified.notificationsPending).toBe(false);
      // Not again: another pass leaves it alone, and queueing the same ending again is the same job (its id is the
      // notification's, derived from the ending), which BullMQ does not take twice.
      const notificationId = JSON.parse(sent.body).id as string;
      await waitFor(async () => ((await napi.queues.notifications.getJob(notificationId))?.finishedOn ? true : null), 5000, 'the job to be done');
      await worker.host.reconcile();
      await napi.services.notifications.taskFinished(notified);
      const jobsForEnding = (await napi.queues.notifications.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'])).filter(
        (job) => job.data.payload.sentFor === ended.id && job.data.subscriberId === rawId(created.createNotificationSubscriber.created.subscriber.id, 'NotificationSubscriber'),
      );
      expect(jobsForEnding.map((job) => [job.id, job.attemptsMade])).toEqual([[notificationId, 1]]);
      expect(received.filter((r) => r.path === '/outbox')).toHaveLength(1);
    } finally {
      await cutOff.close();
      await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id: created.createNotificationSubscriber.created.subscriber.id }, napi, ntoken);
    }
  });
});

// Last: its deliveries are FAILED, which the delivery-log tests above count.
describe('rules and org aliases', () => {
  it("never creates a task for another org that took over the alias of the rule's org (renamed or removed)", async () => {
    const source = await createSource('GITHUB', 'takeover');
    for (const [alias, leave] of [['take-renamed', `mutation { updateOrg(alias: "take-renamed", patch: { alias: "take-renamed-2" }) { __typename } }`], ['take-removed', `mutation { removeOrg(alias: "take-removed") { __typename } }`]] as const) {
      expect(await registerOrg(alias, 'SANDBOX', 'sandbox')).toBe('RegisterOrgSuccess');
      await createRule(source, { name: `for-${alias}`, event: 'push', repository: `takeover/${alias}`, org: alias });
      expect(Object.values(await data(leave))[0]).toMatchObject({ __typename: expect.stringMatching(/Success$/) });
      expect(await registerOrg(alias, 'PRODUCTION', 'production')).toBe('RegisterOrgSuccess');
      const tasksBefore = await api.prisma.task.count({ where: { orgAlias: alias } });
      const res = await github(source, 'push', ghPush(`takeover/${alias}`, 'refs/heads/main'));
      expect(res.body).toMatchObject({ status: 'FAILED', taskIds: [] });
      expect(res.body.error).toBe(`rule for-${alias}: org "${alias}" is not the org this rule was created for (that org was renamed or removed)`);
      expect(await api.prisma.task.count({ where: { orgAlias: alias } })).toBe(tasksBefore);
    }
  });
});
