// Salesforce and network failures as stable task error codes. Messages are Salesforce's own or ours; they
// never include tokens (jsforce errors carry the request, so nothing but name, code and message is kept).
import { OperationError } from '../operation.js';

const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/**
 * Failures of a session refresh jsforce ran by itself mid-operation, by key. jsforce rethrows a failed refresh
 * as a new Error with only the message ("Unable to refresh session due to: …"): the name, code and status that
 * tell a network failure from refused credentials are gone. The refresh function (connect.ts) classifies its
 * failure first and hands jsforce an error whose message carries the key, so toOperationError finds it again.
 */
const refreshFailures = new Map<number, OperationError>();
let refreshFailureKeys = 0;
const refreshFailureMark = /\[refresh failure (\d+)\]/;

/** The error a refresh function gives jsforce for `failure`: toOperationError turns what jsforce makes of it back into `failure`. */
export function refreshFailure(failure: OperationError): Error {
  const key = (refreshFailureKeys += 1);
  refreshFailures.set(key, failure);
  // Only the latest matter (each is looked up right after jsforce rethrows it); a long deployment may meet many.
  if (refreshFailures.size > 100) refreshFailures.delete(refreshFailures.keys().next().value!);
  return new Error(`${failure.message} [refresh failure ${key}]`);
}

interface SalesforceError {
  name?: string;
  errorCode?: string;
  code?: string;
  message?: string;
  statusCode?: number;
  cause?: { code?: string };
}

function clean(message: string | undefined): string {
  return (message ?? 'unknown error')
    .replace(/(<(?:\w+:)?sessionId>)[^<]*/gi, '$1[redacted]')
    .replace(/(access_token|refresh_token|oauth_token|sessionId|Bearer)[=:\s"]+[^\s"&<]+/gi, '$1=[redacted]')
    .slice(0, 500);
}

export function toOperationError(error: unknown, doing: string): OperationError {
  if (error instanceof OperationError) return error;
  const e = (error ?? {}) as SalesforceError;
  const refresh = refreshFailureMark.exec(e.message ?? '');
  const refreshed = refresh ? refreshFailures.get(Number(refresh[1])) : undefined;
  if (refreshed) return refreshed;
  const code = e.errorCode ?? e.name ?? '';
  const message = clean(e.message);
  if (code === 'invalid_grant' || /invalid_grant|expired access\/refresh token|inactive user|app is not approved/i.test(message)) {
    return new OperationError('ORG_AUTH_FAILED', `Salesforce refused the stored credentials while ${doing}: ${message}`, false);
  }
  if (/INVALID_SESSION_ID|INVALID_AUTH_HEADER/.test(code) || /INVALID_SESSION_ID/.test(message)) {
    return new OperationError('ORG_AUTH_FAILED', `The Salesforce session could not be renewed while ${doing}: ${message}`, false);
  }
  if (/REQUEST_LIMIT_EXCEEDED|TOO_MANY_REQUESTS/.test(code) || /REQUEST_LIMIT_EXCEEDED/.test(message) || e.statusCode === 429) {
    return new OperationError('SF_API_LIMIT', `Salesforce API limit reached while ${doing}: ${message}`, true);
  }
  const network = e.code ?? e.cause?.code;
  // Salesforce's own server errors: a REST 500 (errorCode UNKNOWN_EXCEPTION) or a SOAP fault (sf:UNKNOWN_EXCEPTION,
  // always HTTP 500, so jsforce's error carries no status code).
  // The OAuth token endpoint's `unknown_error` ("retry your request") is the same.
  const serverError = /^(?:sf:)?(?:UNKNOWN_EXCEPTION|SERVER_UNAVAILABLE)$|^unknown_error$/.test(code);
  if ((network && networkCodes.has(network)) || serverError || (e.statusCode !== undefined && e.statusCode >= 500) || /ERROR_HTTP_5\d\d|socket hang up|fetch failed/i.test(`${code} ${message}`)) {
    return new OperationError('ORG_UNREACHABLE', `Salesforce could not be reached while ${doing}: ${message}`, true);
  }
  return new OperationError('SALESFORCE_ERROR', `Salesforce answered with an error while ${doing}: ${code ? `${code}: ` : ''}${message}`, false);
}
