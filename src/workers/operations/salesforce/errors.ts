// Salesforce and network failures as stable task error codes. Messages are Salesforce's own or ours; they
// never include tokens (jsforce errors carry the request, so nothing but name, code and message is kept).
import { OperationError } from '../operation.js';

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

interface SalesforceError {
  name?: string;
  errorCode?: string;
  code?: string;
  message?: string;
  statusCode?: number;
  cause?: { code?: string };
}

function clean(message: string | undefined): string {
  return (message ?? 'unknown error').replace(/(access_token|refresh_token|sessionId|Bearer)[=:\s"]+[^\s"&]+/gi, '$1=[redacted]').slice(0, 500);
}

export function toOperationError(error: unknown, doing: string): OperationError {
  if (error instanceof OperationError) return error;
  const e = (error ?? {}) as SalesforceError;
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
  const serverError = /^(?:sf:)?(?:UNKNOWN_EXCEPTION|SERVER_UNAVAILABLE)$/.test(code);
  if ((network && networkCodes.has(network)) || serverError || (e.statusCode !== undefined && e.statusCode >= 500) || /ERROR_HTTP_5\d\d|socket hang up|fetch failed/i.test(`${code} ${message}`)) {
    return new OperationError('ORG_UNREACHABLE', `Salesforce could not be reached while ${doing}: ${message}`, true);
  }
  return new OperationError('SALESFORCE_ERROR', `Salesforce answered with an error while ${doing}: ${code ? `${code}: ` : ''}${message}`, false);
}
