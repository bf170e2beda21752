// Opens a jsforce connection inside the per-task child: the refresh token is exchanged for an access token
// here, and jsforce refreshes it again by itself when a session expires mid-operation. Neither token leaves
// this process. jsforce is loaded only by operations that talk to Salesforce, and only its core plus the APIs
// the operation uses: the package's index also loads Bulk, Bulk 2.0, Chatter, Analytics, Apex, Tooling,
// SOAP and the Streaming API (with its Faye client), which no operation here needs.
import type { Connection } from 'jsforce';
import type { OperationContext } from '../operation.js';
import { toOperationError } from './errors.js';

/** The Salesforce CLI's connected app, which SFDX auth URLs without a client id were issued for. */
const defaultClientId = 'PlatformCLI';
export const defaultApiVersion = '62.0';

export interface SalesforceSession {
  conn: Connection;
  /** The identity URL from the token response (…/id/<orgId>/<userId>). */
  identityUrl: string | undefined;
}

/** jsforce API modules an operation may ask for; each registers itself on Connection when imported. */
const apiModules = {
  metadata: () => import('jsforce/lib/api/metadata.js'),
};

export async function connect(ctx: OperationContext<{ apiVersion?: string }>, apis: Array<keyof typeof apiModules> = []): Promise<SalesforceSession> {
  const credentials = await ctx.credentials();
  const [jsforce] = await Promise.all([import('jsforce/lib/core.js'), ...apis.map((api) => apiModules[api]())]);
  const oauth2 = {
    clientId: credentials.clientId ?? defaultClientId,
    ...(credentials.clientSecret ? { clientSecret: credentials.clientSecret } : {}),
    // My Domain instance URLs serve the OAuth token endpoint too, for production and sandboxes alike.
    loginUrl: credentials.instanceUrl,
    redirectUri: 'http://localhost:1717/OauthRedirect',
  };
  try {
    const token = await new jsforce.OAuth2(oauth2).refreshToken(credentials.refreshToken);
    const conn = new jsforce.Connection({
      oauth2,
      instanceUrl: token.instance_url,
      accessToken: token.access_token,
      refreshToken: credentials.refreshToken,
      version: ctx.params.apiVersion ?? defaultApiVersion,
    });
    return { conn, identityUrl: token.id };
  } catch (error) {
    throw toOperationError(error, 'refreshing the access token');
  }
}
