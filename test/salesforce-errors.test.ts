// How Salesforce and network failures become task error codes (src/workers/operations/salesforce/errors.ts),
// for the shapes jsforce gives them. The end-to-end cases (the simulator's SOAP faults, REST errors, OAuth
// errors, sessions expiring and refused) are in salesforce-operations.test.ts.
import { describe, expect, it } from 'vitest';
import { deploymentStartFailure } from '../src/workers/operations/deploy.js';
import { OperationError } from '../src/workers/operations/operation.js';
import { refreshFailure, toOperationError } from '../src/workers/operations/salesforce/errors.js';

const classify = (error: unknown) => {
  const failure = toOperationError(error, 'testing');
  return [failure.code, failure.retryable];
};

describe('toOperationError', () => {
  it('takes network failures jsforce and Node report for an unreachable org: retried', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENETDOWN', 'EHOSTDOWN', 'ERR_STREAM_PREMATURE_CLOSE']) {
      expect(classify(Object.assign(new Error(`request failed, reason: ${code}`), { code })), code).toEqual(['ORG_UNREACHABLE', true]);
    }
    expect(classify(Object.assign(new Error('fetch failed'), { cause: { code: 'EHOSTDOWN' } }))).toEqual(['ORG_UNREACHABLE', true]);
  });

  it("takes the token endpoint's unknown_error (\"retry your request\") as a server error: retried", () => {
    expect(classify(Object.assign(new Error('retry your request'), { name: 'unknown_error' }))).toEqual(['ORG_UNREACHABLE', true]);
  });

  it('keeps the classification of a failed refresh that jsforce rethrew with its message only', () => {
    const unreachable = toOperationError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }), 'refreshing the session');
    // What jsforce's SessionRefreshDelegate throws: a new Error, with the message of the one it was given.
    const rethrown = new Error(`Unable to refresh session due to: ${refreshFailure(unreachable).message}`);
    expect(toOperationError(rethrown, 'checking deployment 0Af')).toBe(unreachable);
    const refused = new OperationError('ORG_AUTH_FAILED', 'refused', false);
    expect(toOperationError(new Error(`Unable to refresh session due to: ${refreshFailure(refused).message}`), 'x')).toBe(refused);
    // Without the key: the message alone says nothing retryable.
    expect(classify(new Error('Unable to refresh session due to: something'))).toEqual(['SALESFORCE_ERROR', false]);
  });

  it('redacts session ids and tokens from messages, SOAP and form-encoded alike', () => {
    const soap = toOperationError(new Error('<soapenv:Header><SessionHeader><sessionId>00Dxx!AQ0Asecret</sessionId></SessionHeader>'), 'x');
    expect(soap.message).not.toContain('AQ0Asecret');
    const form = toOperationError(new Error('grant_type=refresh_token&oauth_token=5Aep861secret&x=1'), 'x');
    expect(form.message).not.toContain('5Aep861secret');
    const header = toOperationError(new Error('Authorization: Bearer 00Dxx!AQ0Asecret2'), 'x');
    expect(header.message).not.toContain('AQ0Asecret2');
  });
});

describe('deploymentStartFailure', () => {
  it('is INVALID_PACKAGE only for what Salesforce refused about the zip, not for a failure that mentions one in a URL', () => {
    const refusedZip = Object.assign(new Error('The zip file could not be read: invalid CEN header'), { name: 'sf:INVALID_ZIP' });
    expect(deploymentStartFailure(refusedZip)).toMatchObject({ code: 'INVALID_PACKAGE', retryable: false });
    const reset = Object.assign(new Error('request to https://zipline.my.salesforce.com/services/Soap/m/62.0 failed, reason: socket hang up'), { code: 'ECONNRESET' });
    expect(deploymentStartFailure(reset)).toMatchObject({ code: 'ORG_UNREACHABLE', retryable: true });
    const limit = Object.assign(new Error('TotalRequests Limit exceeded for package deploys'), { name: 'sf:REQUEST_LIMIT_EXCEEDED' });
    expect(deploymentStartFailure(limit)).toMatchObject({ code: 'SF_API_LIMIT', retryable: true });
  });
});
