// Opens a jsforce connection inside the per-task child: the refresh token is exchanged for an access token
// here, and jsforce refreshes it again by itself when a session expires mid-operation. Neither token leaves
// this process. jsforce is loaded only by operations that talk to Salesforce, and only as much of it as the
// operation uses (load-jsforce.ts).
import type { Connection } from 'jsforce';
import type { OperationContext } from '../operation.js';
import { toOperationError } from './errors.js';
import { loadJsforce, type JsforceApi } from './load-jsforce.js';

/** The Salesforce CLI's connected app, which SFDX auth URLs without a client id were issued for. */
const defaultClientId = 'PlatformCLI';
export const defaultApiVersion = '62.0';

export interface SalesforceSession {
  conn: Connection;
  /** The identity URL from the token response (…/id/<orgId>/<userId>). */
  identityUrl: string | undefined;
}

export async function connect(ctx: OperationContext<{ apiVersion?: string }>, apis: JsforceApi[] = []): Promise<SalesforceSession> {
  const credentials = await ctx.credentials();
  const jsforce = loadJsforce(apis);
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
