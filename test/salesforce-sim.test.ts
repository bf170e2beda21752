// The Salesforce API simulator (test/fixtures/salesforce-sim.ts) driven by jsforce 3 itself over real HTTP:
// OAuth refresh, identity, REST query and limits, Metadata API deploy / status polling / cancel / quick
// deploy / retrieve, session expiry mid-deploy, revoked refresh tokens and injected failures. It pins
// both the simulator's wire formats and the way jsforce reports each case, which product code relies on.
import { randomBytes } from 'node:crypto';
import jsforce from 'jsforce';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buildZip,
  QUICK_DEPLOY_NOT_ELIGIBLE,
  readZip,
  startSalesforceSim,
  type SalesforceSim,
} from './fixtures/salesforce-sim.js';
import { samplePackage } from './support/salesforce-package.js';

const clientId = `3MVG9sim.${randomBytes(12).toString('hex')}`;
const clientSecret = `sim-secret-${randomBytes(16).toString('hex')}`;
const ORG_SOQL = 'SELECT Id, Name, OrganizationType, IsSandbox, InstanceName FROM Organization';

let sim: SalesforceSim;
let refreshToken: string;

beforeEach(async () => {
  sim = await startSalesforceSim({ org: { Name: 'Acme Production', InstanceName: 'NA224' } });
  refreshToken = `5Aep861sim${randomBytes(24).toString('hex')}`;
  sim.addRefreshToken(refreshToken, { clientId, clientSecret });
});

afterEach(async () => {
  await sim.close();
});

function connect(token = refreshToken) {
  const conn = new jsforce.Connection({
    oauth2: { clientId, clientSecret, loginUrl: sim.loginUrl },
    instanceUrl: sim.instanceUrl,
    refreshToken: token,
    version: '62.0',
  });
  const refreshes: string[] = [];
  conn.on('refresh', (accessToken: string) => refreshes.push(accessToken));
  return { conn, refreshes };
}

/**
 * jsforce's generated RetrieveRequest type wants apiVersion as a number and a full Package (objectPermissions,
 * …) for unpackaged; the wire only needs what Salesforce documents, so requests are written as on the wire.
 */
type RetrieveRequest = Parameters<jsforce.Connection['metadata']['retrieve']>[0];
const retrieveRequest = (request: { apiVersion: string; singlePackage?: boolean; unpackaged: { types: Array<{ name: string; members: string[] }>; version: string } }) =>
  request as unknown as RetrieveRequest;

type DeployResult = Awaited<ReturnType<jsforce.Connection['metadata']['checkDeployStatus']>>;

async function pollDeploy(conn: jsforce.Connection, id: string, max = 20): Promise<DeployResult[]> {
  const seen: DeployResult[] = [];
  for (let i = 0; i < max; i++) {
    const result = await conn.metadata.checkDeployStatus(id, true);
    seen.push(result);
    if (result.done) return seen;
  }
  throw new Error(`deploy ${id} not done after ${max} polls`);
}

async function rejection(promise: PromiseLike<unknown>): Promise<Error & { errorCode?: string; data?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { errorCode?: string };
  }
  throw new Error('expected the call to fail');
}

describe('OAuth, identity and the REST API', () => {
  it('refreshes a session, answers identity, the Organization query and limits', async () => {
    const { conn, refreshes } = connect();

    const identity = await conn.identity();
    expect(identity.organization_id).toBe(sim.org.Id);
    expect(identity.user_id).toBe(sim.user.id);
    expect(identity.username).toBe(sim.user.username);
    expect(identity.display_name).toBe(sim.user.displayName);
    expect(identity.urls.rest).toBe(`${sim.instanceUrl}/services/data/v{version}/`);
    expect(sim.org.Id).toMatch(/^00D[0-9A-Za-z]{15}$/);

    // jsforce had no access token: the first call got 401 INVALID_SESSION_ID, it refreshed, retried.
    expect(refreshes).toHaveLength(1);
    expect(sim.tokenRefreshCount).toBe(1);
    expect(conn.accessToken).toBe(refreshes[0]);
    const [first, token, retried, identityCall] = sim.requests;
    expect(first).toMatchObject({ method: 'GET', path: '/services/data/v62.0', status: 401, errorCode: 'INVALID_SESSION_ID' });
    expect(first!.accessToken).toBeUndefined();
    expect(token).toMatchObject({
      method: 'POST',
      path: '/services/oauth2/token',
      status: 200,
      grantType: 'refresh_token',
      clientId,
      refreshToken,
      sentClientSecret: true,
    });
    expect(retried).toMatchObject({ path: '/services/data/v62.0', status: 200, accessToken: refreshes[0] });
    expect(identityCall).toMatchObject({ path: `/id/${sim.org.Id}/${sim.user.id}`, status: 200, accessToken: refreshes[0] });
    expect(identityCall!.query).toMatchObject({ format: 'json', oauth_token: '<redacted>' });
    // Secrets never reach the logged headers or query.
    expect(JSON.stringify(sim.requests.map((r) => [r.headers, r.query]))).not.toContain(refreshes[0]!);
    expect(JSON.stringify(sim.requests)).not.toContain(clientSecret);

    const result = await conn.query<{ Id: string; Name: string; OrganizationType: string; IsSandbox: boolean; InstanceName: string }>(ORG_SOQL);
    expect(result.totalSize).toBe(1);
    expect(result.done).toBe(true);
    expect(result.records[0]).toEqual({
      attributes: { type: 'Organization', url: `/services/data/v62.0/sobjects/Organization/${sim.org.Id}` },
      Id: sim.org.Id,
      Name: 'Acme Production',
      OrganizationType: 'Developer Edition',
      IsSandbox: false,
      InstanceName: 'NA224',
    });

    const limits = await conn.limits();
    expect(limits.DailyApiRequests!.Max).toBe(15000);
    // GET /services/data/v62.0, the query and the limits call itself were counted.
    expect(limits.DailyApiRequests!.Remaining).toBe(15000 - 3);
    expect(conn.limitInfo.apiUsage).toEqual({ used: 3, limit: 15000 });
  });

  it('refreshes again when the access token expires, presenting the refresh token', async () => {
    const { conn, refreshes } = connect();
    await conn.query(ORG_SOQL);
    expect(refreshes).toHaveLength(1);
    const oldToken = refreshes[0]!;

    expect(sim.expireAccessTokens()).toBe(1);
    sim.clearRequests();
    const again = await conn.query<{ Name: string }>('SELECT Name FROM Organization');
    expect(again.records[0]!.Name).toBe('Acme Production');
    expect(refreshes).toHaveLength(2);
    expect(sim.tokenRefreshCount).toBe(2);
    expect(sim.requests.map((r) => [r.path, r.status, r.accessToken ?? r.refreshToken])).toEqual([
      ['/services/data/v62.0/query', 401, oldToken],
      ['/services/oauth2/token', 200, refreshToken],
      ['/services/data/v62.0/query', 200, refreshes[1]],
    ]);
    expect(sim.validAccessTokens()).toEqual([refreshes[1]]);
  });

  it('answers invalid_grant for a revoked refresh token; jsforce wraps it when refreshing a session', async () => {
    const { conn } = connect();
    await conn.query(ORG_SOQL);
    expect(sim.revokeRefreshToken(refreshToken)).toBe(true);

    // The OAuth2 client reports the OAuth error as the Error's name.
    const direct = await rejection(conn.oauth2.refreshToken(refreshToken));
    expect(direct.name).toBe('invalid_grant');
    expect(direct.message).toBe('expired access/refresh token');

    // Revoking the refresh token revoked its access tokens, so the query needs a refresh, which fails; the
    // session refresh delegate rethrows a plain Error and the OAuth error name is lost.
    const viaSession = await rejection(conn.query(ORG_SOQL));
    expect(viaSession.name).toBe('Error');
    expect(viaSession.message).toBe('Unable to refresh session due to: expired access/refresh token');
    expect(sim.requests.filter((r) => r.errorCode === 'invalid_grant')).toHaveLength(2);
  });

  it('rejects a wrong consumer secret and an unknown sObject', async () => {
    const wrong = new jsforce.OAuth2({ clientId, clientSecret: 'nope', loginUrl: sim.loginUrl });
    const error = await rejection(wrong.refreshToken(refreshToken));
    expect(error.name).toBe('invalid_client');

    const { conn } = connect();
    const invalidType = await rejection(conn.query('SELECT Id FROM Widget__x'));
    expect(invalidType.errorCode).toBe('INVALID_TYPE');
    const invalidField = await rejection(conn.query('SELECT Id, Bogus FROM Organization'));
    expect(invalidField.errorCode).toBe('INVALID_FIELD');
  });

  it('surfaces REQUEST_LIMIT_EXCEEDED (injected and real) and retries a 500 on a GET', async () => {
    const { conn } = connect();
    await conn.query(ORG_SOQL);

    sim.failNext('/limits', 'REQUEST_LIMIT_EXCEEDED');
    const injected = await rejection(conn.limits());
    expect(injected.name).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(injected.errorCode).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(injected.message).toBe('TotalRequests Limit exceeded.');
    expect(sim.requests.at(-1)).toMatchObject({ status: 403, injected: 'REQUEST_LIMIT_EXCEEDED' });

    // Exhausting DailyApiRequests answers the same.
    sim.setLimits({ DailyApiRequests: { Max: 100, Remaining: 1 } });
    await conn.query(ORG_SOQL);
    const exhausted = await rejection(conn.query(ORG_SOQL));
    expect(exhausted.errorCode).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(sim.getLimits().DailyApiRequests).toEqual({ Max: 100, Remaining: 0 });
    sim.setLimits({ DailyApiRequests: { Max: 100, Remaining: 100 } });

    // jsforce retries GETs answered 500 (after 500 ms), so one injected 500 on a query is invisible to the
    // caller; only the log shows it.
    sim.clearRequests();
    sim.failNext('/query', 500);
    const retried = await conn.query<{ Name: string }>('SELECT Name FROM Organization');
    expect(retried.records[0]!.Name).toBe('Acme Production');
    expect(sim.requests.map((r) => [r.status, r.errorCode])).toEqual([
      [500, 'UNKNOWN_EXCEPTION'],
      [200, undefined],
    ]);
  });
});

describe('Metadata API', () => {
  it('deploys: Pending → InProgress with growing counts → Succeeded, with details', async () => {
    const { conn } = connect();
    sim.deployPlan({ components: 3, tests: 4, pollsToFinish: 4 });
    const zip = samplePackage(['Foo', 'Bar', 'Baz']);
    const started = await conn.metadata.deploy(zip, {
      checkOnly: false,
      testLevel: 'RunSpecifiedTests',
      runTests: ['FooTest', 'BarTest'],
      rollbackOnError: true,
    });
    // jsforce casts deploy()'s AsyncResult with the DeployResult schema: id/state/done are real, the rest defaults.
    expect(started.id).toMatch(/^0Af[0-9A-Za-z]{15}$/);
    expect(started.done).toBe(false);
    expect((started as unknown as { state: string }).state).toBe('Queued');

    const polls = await pollDeploy(conn, started.id);
    expect(polls.map((p) => p.status)).toEqual(['Pending', 'InProgress', 'InProgress', 'Succeeded']);
    expect(polls.map((p) => p.numberComponentsDeployed)).toEqual([0, 1, 2, 3]);
    expect(polls.map((p) => p.numberTestsCompleted)).toEqual([0, 2, 3, 4]);
    expect(polls[1]!.stateDetail).toMatch(/^Running Test: /);
    const final = polls.at(-1)!;
    expect(final).toMatchObject({
      id: started.id,
      done: true,
      success: true,
      checkOnly: false,
      rollbackOnError: true,
      runTestsEnabled: true,
      numberComponentsTotal: 3,
      numberComponentErrors: 0,
      numberTestsTotal: 4,
      numberTestErrors: 0,
      createdBy: sim.user.id,
    });
    expect(final.details.componentSuccesses.map((c) => c.fullName).sort()).toEqual(['Bar', 'Baz', 'Foo', 'package.xml']);
    expect(final.details.componentSuccesses.find((c) => c.fullName === 'Foo')).toMatchObject({
      componentType: 'ApexClass',
      fileName: 'classes/Foo.cls',
      success: true,
    });
    expect(final.details.runTestResult).toMatchObject({ numTestsRun: 4, numFailures: 0, failures: [] });

    const seen = sim.getDeploy(started.id)!;
    expect(seen.options).toMatchObject({ checkOnly: false, testLevel: 'RunSpecifiedTests', runTests: ['FooTest', 'BarTest'], rollbackOnError: true });
    expect(seen.zipEntries).toContain('classes/Foo.cls');
    // The fresh connection's first SOAP call carried no SessionHeader: a sf:INVALID_SESSION_ID fault (HTTP
    // 500) made jsforce refresh and resend the envelope with the new session id.
    const soapCalls = sim.requests.filter((r) => r.operation);
    expect(soapCalls.map((r) => [r.operation, r.status, r.errorCode ?? null, r.accessToken ?? null])).toEqual([
      ['deploy', 500, 'INVALID_SESSION_ID', null],
      ['deploy', 200, null, conn.accessToken],
      ...Array.from({ length: 4 }, () => ['checkDeployStatus', 200, null, conn.accessToken]),
    ]);
    expect(soapCalls[1]!.headers['content-type']).toBe('text/xml');
    expect(soapCalls[1]!.headers.soapaction).toBe('""');
  });

  it('reports component failures, test failures and coverage warnings', async () => {
    const { conn } = connect();
    sim.deployPlan({
      pollsToFinish: 1,
      componentFailures: [{ fullName: 'Bar', lineNumber: 3, columnNumber: 7, problem: 'Variable does not exist: x' }],
    });
    const broken = await conn.metadata.deploy(samplePackage(['Foo', 'Bar']), { rollbackOnError: true, testLevel: 'RunLocalTests' });
    const [failed] = await pollDeploy(conn, broken.id);
    expect(failed).toMatchObject({ status: 'Failed', done: true, success: false, numberComponentErrors: 1, numberComponentsDeployed: 1, numberTestsTotal: 0 });
    expect(failed!.details.componentFailures).toEqual([
      expect.objectContaining({
        fullName: 'Bar',
        fileName: 'classes/Bar.cls',
        componentType: 'ApexClass',
        lineNumber: 3,
        columnNumber: 7,
        problem: 'Variable does not exist: x',
        problemType: 'Error',
        success: false,
      }),
    ]);

    sim.deployPlan({
      tests: 3,
      pollsToFinish: 2,
      testFailures: [{ name: 'FooTest', methodName: 'itWorks', message: 'System.AssertException: Assertion Failed', stackTrace: 'Class.FooTest.itWorks: line 5, column 1' }],
      coverageWarnings: [{ name: 'Foo', message: 'Test coverage of selected Apex Class is 40%, at least 75% test coverage is required' }],
    });
    const red = await conn.metadata.deploy(samplePackage(), { rollbackOnError: true, testLevel: 'RunSpecifiedTests', runTests: ['FooTest'] });
    const final = (await pollDeploy(conn, red.id)).at(-1)!;
    expect(final).toMatchObject({ status: 'Failed', success: false, numberTestsTotal: 3, numberTestsCompleted: 2, numberTestErrors: 1 });
    const run = final.details.runTestResult!;
    expect(run.numTestsRun).toBe(3);
    expect(run.numFailures).toBe(1);
    expect(run.failures).toEqual([
      expect.objectContaining({ name: 'FooTest', methodName: 'itWorks', message: 'System.AssertException: Assertion Failed', stackTrace: 'Class.FooTest.itWorks: line 5, column 1' }),
    ]);
    expect(run.codeCoverageWarnings).toEqual([
      expect.objectContaining({ name: 'Foo', message: 'Test coverage of selected Apex Class is 40%, at least 75% test coverage is required' }),
    ]);

    // A zip without package.xml fails like Salesforce does.
    const noManifest = await conn.metadata.deploy(buildZip({ 'classes/Foo.cls': 'public class Foo {}' }), {});
    const [bad] = await pollDeploy(conn, noManifest.id);
    expect(bad!.status).toBe('Failed');
    expect(bad!.details.componentFailures[0]!.problem).toBe('No package.xml found');
  });

  it('refreshes an expired session in the middle of a deploy and keeps polling', async () => {
    const { conn, refreshes } = connect();
    sim.deployPlan({ pollsToFinish: 5, tests: 2 });
    const started = await conn.metadata.deploy(samplePackage(), { testLevel: 'RunLocalTests', rollbackOnError: true });
    expect(refreshes).toHaveLength(1);
    sim.expireSessionAfterPolls(2);

    const polls = await pollDeploy(conn, started.id);
    expect(polls.map((p) => p.status)).toEqual(['Pending', 'InProgress', 'InProgress', 'InProgress', 'Succeeded']);
    expect(refreshes).toHaveLength(2);
    const checks = sim.requests.filter((r) => r.operation === 'checkDeployStatus');
    expect(checks.map((r) => [r.status, r.errorCode ?? null, r.accessToken])).toEqual([
      [200, null, refreshes[0]],
      [200, null, refreshes[0]],
      [500, 'INVALID_SESSION_ID', refreshes[0]],
      [200, null, refreshes[1]],
      [200, null, refreshes[1]],
      [200, null, refreshes[1]],
    ]);
  });

  it('cancels a queued deploy at once and a running one via Canceling → Canceled', async () => {
    const { conn } = connect();
    sim.deployPlan({ pollsToFinish: 10 });
    const queued = await conn.metadata.deploy(samplePackage(), {});
    // jsforce returns cancelDeploy's result uncast: done is the string from the XML.
    const immediate = await conn.metadata.cancelDeploy(queued.id);
    expect(immediate).toEqual({ id: queued.id, done: 'true' });
    const [canceled] = await pollDeploy(conn, queued.id);
    expect(canceled).toMatchObject({ status: 'Canceled', done: true, success: false, canceledBy: sim.user.id });

    sim.deployPlan({ pollsToFinish: 10 });
    const running = await conn.metadata.deploy(samplePackage(), {});
    expect((await conn.metadata.checkDeployStatus(running.id)).status).toBe('Pending');
    expect((await conn.metadata.checkDeployStatus(running.id)).status).toBe('InProgress');
    expect(await conn.metadata.cancelDeploy(running.id)).toEqual({ id: running.id, done: 'false' });
    const after = await pollDeploy(conn, running.id);
    expect(after.map((p) => [p.status, p.done])).toEqual([
      ['Canceling', false],
      ['Canceled', true],
    ]);

    const tooLate = await rejection(conn.metadata.cancelDeploy(running.id));
    expect(tooLate.name).toBe('sf:INVALID_ID_FIELD');
    expect(tooLate.message).toBe('INVALID_ID_FIELD: Deployment already completed');
  });

  it('quick-deploys a recent validation with tests, and refuses anything else', async () => {
    const { conn } = connect();
    sim.deployPlan({ tests: 2, pollsToFinish: 2 });
    const validation = await conn.metadata.deploy(samplePackage(), { checkOnly: true, testLevel: 'RunLocalTests', rollbackOnError: true });
    const validated = (await pollDeploy(conn, validation.id)).at(-1)!;
    expect(validated).toMatchObject({ status: 'Succeeded', checkOnly: true, numberTestsCompleted: 2 });

    const quickId = await conn.metadata.deployRecentValidation({ id: validation.id, rest: false });
    expect(quickId).toMatch(/^0Af[0-9A-Za-z]{15}$/);
    expect(quickId).not.toBe(validation.id);
    const quick = (await pollDeploy(conn, quickId)).at(-1)!;
    expect(quick).toMatchObject({ id: quickId, status: 'Succeeded', success: true, checkOnly: false, numberTestsTotal: 0 });
    expect(sim.getDeploy(quickId)!.validatedDeployRequestId).toBe(validation.id);
    expect(sim.getDeploy(validation.id)!.quickDeployedAs).toBe(quickId);

    const again = await rejection(conn.metadata.deployRecentValidation({ id: validation.id, rest: false }));
    expect(again.name).toBe('sf:INVALID_ID_FIELD');

    const noTests = await conn.metadata.deploy(samplePackage(), { checkOnly: true, testLevel: 'NoTestRun' });
    await pollDeploy(conn, noTests.id);
    const refused = await rejection(conn.metadata.deployRecentValidation({ id: noTests.id, rest: false }));
    expect(refused.name).toBe('sf:INVALID_ID_FIELD');
    expect(refused.errorCode).toBe('sf:INVALID_ID_FIELD');
    expect(refused.message).toBe(`INVALID_ID_FIELD: ${QUICK_DEPLOY_NOT_ELIGIBLE}`);

    const unknown = await rejection(conn.metadata.deployRecentValidation({ id: '0Af000000000000AAA', rest: false }));
    expect(unknown.message).toBe('INVALID_ID_FIELD: Invalid deploy ID');
  });

  it('retrieves a real zip after K polls', async () => {
    const { conn } = connect();
    sim.retrievePlan({ pollsToFinish: 3, missingMembers: ['Gone'] });
    const started = await conn.metadata.retrieve(
      retrieveRequest({ apiVersion: '62.0', unpackaged: { types: [{ name: 'ApexClass', members: ['Foo', 'Gone'] }], version: '62.0' } }),
    );
    expect(started.id).toMatch(/^09S[0-9A-Za-z]{15}$/);
    expect(started.done).toBe(false);

    const statuses: string[] = [];
    let result = await conn.metadata.checkRetrieveStatus(started.id);
    statuses.push(result.status);
    while (!result.done) {
      result = await conn.metadata.checkRetrieveStatus(started.id);
      statuses.push(result.status);
    }
    expect(statuses).toEqual(['Pending', 'InProgress', 'Succeeded']);
    expect(result.success).toBe(true);
    expect(result.messages).toEqual([{ fileName: 'unpackaged/package.xml', problem: "Entity of type 'ApexClass' named 'Gone' cannot be found" }]);
    expect(result.fileProperties.map((f) => [f.type, f.fullName, f.fileName])).toEqual([
      ['ApexClass', 'Foo', 'unpackaged/classes/Foo.cls'],
      ['Package', 'unpackaged/package.xml', 'unpackaged/package.xml'],
    ]);

    const zip = Buffer.from(result.zipFile, 'base64');
    expect(zip.readUInt32LE(0)).toBe(0x04034b50); // "PK\3\4"
    const files = readZip(zip);
    expect([...files.keys()]).toEqual(['unpackaged/package.xml', 'unpackaged/classes/Foo.cls', 'unpackaged/classes/Foo.cls-meta.xml']);
    expect(files.get('unpackaged/classes/Foo.cls')!.toString()).toContain('class Foo');
    const manifest = files.get('unpackaged/package.xml')!.toString();
    expect(manifest).toContain('<members>Foo</members>');
    expect(manifest).not.toContain('Gone');
    expect(manifest).toContain('<version>62.0</version>');
    expect(sim.getRetrieve(started.id)).toMatchObject({ apiVersion: '62.0', types: [{ name: 'ApexClass', members: ['Foo', 'Gone'] }] });

    // jsforce's own locator polls to completion too.
    conn.metadata.pollInterval = 20;
    const viaLocator = await conn.metadata
      .retrieve(retrieveRequest({ apiVersion: '62.0', singlePackage: true, unpackaged: { types: [{ name: 'ApexTrigger', members: ['OnAccount'] }], version: '62.0' } }))
      .complete();
    expect([...readZip(Buffer.from(viaLocator.zipFile, 'base64')).keys()]).toEqual([
      'package.xml',
      'triggers/OnAccount.trigger',
      'triggers/OnAccount.trigger-meta.xml',
    ]);
  });

  it('surfaces SOAP faults: injected 500 and REQUEST_LIMIT_EXCEEDED, unknown ids', async () => {
    const { conn } = connect();
    await conn.query(ORG_SOQL);

    sim.failNext('deploy', 500);
    const serverError = await rejection(conn.metadata.deploy(samplePackage(), {}));
    expect(serverError.name).toBe('sf:UNKNOWN_EXCEPTION');
    expect(serverError.errorCode).toBe('sf:UNKNOWN_EXCEPTION');
    expect(serverError.message).toMatch(/^UNKNOWN_EXCEPTION: An unexpected error occurred/);
    expect(sim.requests.at(-1)).toMatchObject({ operation: 'deploy', status: 500, injected: 500 });

    const started = await conn.metadata.deploy(samplePackage(), {});
    sim.failNext('checkDeployStatus', 'REQUEST_LIMIT_EXCEEDED');
    const limited = await rejection(conn.metadata.checkDeployStatus(started.id));
    expect(limited.name).toBe('sf:REQUEST_LIMIT_EXCEEDED');
    expect(limited.message).toBe('REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.');
    expect((await conn.metadata.checkDeployStatus(started.id)).status).toBe('InProgress');

    const unknown = await rejection(conn.metadata.checkDeployStatus('0Af000000000000AAA'));
    expect(unknown.name).toBe('sf:INVALID_CROSS_REFERENCE_KEY');
  });
});
