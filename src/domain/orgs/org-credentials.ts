// Parsing and checking the credentials a user hands over when registering an org. Error messages name the
// problem and the field, never the value: the value is a secret.
import { InvalidCredentialsError } from '../errors.js';

export interface OrgCredentials {
  instanceUrl: string;
  refreshToken: string;
  clientId?: string;
  clientSecret?: string;
}

export interface CredentialsInput {
  /** `force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl>`, as printed by `sf org display --verbose`. */
  sfdxAuthUrl?: string | null;
  instanceUrl?: string | null;
  refreshToken?: string | null;
  clientId?: string | null;
  clientSecret?: string | null;
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

export function normaliseInstanceUrl(raw: string, path: string[]): string {
  const value = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidCredentialsError('instance URL is not a valid URL', path);
  }
  // Plain HTTP only to this machine (local simulators and tunnels); Salesforce itself is always HTTPS.
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && loopbackHosts.has(url.hostname));
  if (!secure) throw new InvalidCredentialsError('instance URL must use https', path);
  if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) {
    throw new InvalidCredentialsError('instance URL must be just scheme and host, e.g. https://acme.my.salesforce.com', path);
  }
  return url.origin;
}

function checkToken(value: string, what: string, path: string[]): string {
  if (value.length === 0) throw new InvalidCredentialsError(`${what} is empty`, path);
  if (value.length > 4096) throw new InvalidCredentialsError(`${what} is too long`, path);
  if (/\s/.test(value)) throw new InvalidCredentialsError(`${what} must not contain whitespace`, path);
  return value;
}

/**
 * The two forms the Salesforce CLI writes (sfdx-core's getSfdxAuthUrl): force://<clientId>:<clientSecret>:<refreshToken>@<instance>,
 * and force://<refreshToken>@<instance> for an auth made without a client id.
 */
export function parseSfdxAuthUrl(authUrl: string, path: string[] = ['credentials', 'sfdxAuthUrl']): OrgCredentials {
  const trimmed = authUrl.trim();
  const withClient = /^force:\/\/([^:@]*):([^:@]*):(.+)@([^@]+)$/.exec(trimmed);
  const tokenOnly = withClient ? null : /^force:\/\/([^:@]+)@([^@]+)$/.exec(trimmed);
  if (!withClient && !tokenOnly) {
    throw new InvalidCredentialsError(
      'SFDX auth URL must look like force://<clientId>:<clientSecret>:<refreshToken>@<instanceUrl> or force://<refreshToken>@<instanceUrl>',
      path,
    );
  }
  const [clientId, clientSecret, refreshToken, instance] = withClient
    ? (withClient.slice(1) as [string, string, string, string])
    : (['', '', tokenOnly![1]!, tokenOnly![2]!] as [string, string, string, string]);
  if (clientSecret && !clientId) throw new InvalidCredentialsError('an SFDX auth URL with a client secret needs the client id too', path);
  return {
    instanceUrl: normaliseInstanceUrl(instance, path),
    refreshToken: checkToken(refreshToken, 'refresh token', path),
    ...(clientId ? { clientId: checkToken(clientId, 'client id', path) } : {}),
    ...(clientSecret ? { clientSecret: checkToken(clientSecret, 'client secret', path) } : {}),
  };
}

/** Accepts exactly one of the two forms: an SFDX auth URL, or instanceUrl + refreshToken [+ client keys]. */
export function parseCredentials(input: CredentialsInput, path: string[] = ['credentials']): OrgCredentials {
  const hasFields = Boolean(input.instanceUrl || input.refreshToken || input.clientId || input.clientSecret);
  if (input.sfdxAuthUrl) {
    if (hasFields) {
      throw new InvalidCredentialsError('give either sfdxAuthUrl or instanceUrl + refreshToken, not both', path);
    }
    return parseSfdxAuthUrl(input.sfdxAuthUrl, [...path, 'sfdxAuthUrl']);
  }
  if (!input.instanceUrl) throw new InvalidCredentialsError('instanceUrl (or sfdxAuthUrl) is required', [...path, 'instanceUrl']);
  if (!input.refreshToken) throw new InvalidCredentialsError('refreshToken (or sfdxAuthUrl) is required', [...path, 'refreshToken']);
  if (input.clientSecret && !input.clientId) {
    throw new InvalidCredentialsError('clientSecret needs clientId', [...path, 'clientId']);
  }
  return {
    instanceUrl: normaliseInstanceUrl(input.instanceUrl, [...path, 'instanceUrl']),
    refreshToken: checkToken(input.refreshToken, 'refresh token', [...path, 'refreshToken']),
    ...(input.clientId ? { clientId: checkToken(input.clientId, 'client id', [...path, 'clientId']) } : {}),
    ...(input.clientSecret ? { clientSecret: checkToken(input.clientSecret, 'client secret', [...path, 'clientSecret']) } : {}),
  };
}

/** The secret store keeps flat string maps; this is the one place that shape is decided. */
export function credentialsToSecret(credentials: OrgCredentials): Record<string, string> {
  return { ...credentials } as Record<string, string>;
}
