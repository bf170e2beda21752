// Opens a jsforce connection inside the per-task child: the refresh token is exchanged for an access token
// here, and jsforce refreshes it again (through refreshSession below) when a session expires mid-operation.
// Neither token leaves this process. jsforce is loaded only by operations that talk to Salesforce, and only as much of it as the
// operation uses (load-jsforce.ts).
import type { Connection } from 'jsforce';
import type { TokenResponse } from 'jsforce/lib/oauth2.js';
import { OperationError, type OperationContext } from '../operation.js';
import { refreshFailure, toOperationError } from './errors.js';
import type { JsforceApi } from './jsforce-bundle.js';
import { loadJsforce } from './load-jsforce.js';

/** The Salesforce CLI's connected app, which SFDX auth URLs without a client id were issued for. */
const defaultClientId = 'PlatformCLI';
export const defaultApiVersion = '62.0';

/**
 * A session refused again this soon after jsforce refreshed it was not one that expired: Salesforce refuses the
 * sessions it issues for this user and app (a connected app without the `api` scope, an IP or session
 * restriction). Sessions last at least 15 minutes. (The session `connect` opens may be refused or revoked once
 * without that meaning anything.)
 */
const refusedAgainWithinMs = 60_000;

type RefreshCallback = (error?: Error, accessToken?: string, response?: TokenResponse) => void;

export interface SalesforceSession {
  conn: Connection;
  /** The identity URL from the token response (…/id/<orgId>/<userId>). */
  identityUrl: string | undefined;
}

export async function connect(ctx: OperationContext<{ apiVersion?: string }>, apis: JsforceApi[] = []): Promise<SalesforceSession> {
  const credentials = await ctx.credentials();
  const jsforce = await loadJsforce(apis);
  const oauth2 = {
    clientId: credentials.clientId ?? defaultClientId,
    ...(credentials.clientSecret ? { clientSecret: credentials.clientSecret } : {}),
    // My Domain instance URLs serve the OAuth token endpoint too, for production and sandboxes alike.
    loginUrl: credentials.instanceUrl,
    redirectUri: 'http://localhost:1717/OauthRedirect',
  };
  const client = new jsforce.OAuth2(oauth2);
  /** When jsforce last refreshed the session mid-operation. */
  let refreshedAt = Number.NEGATIVE_INFINITY;
  /**
   * What jsforce calls when a request issued since the last refresh meets an expired session. Instead of its
   * own: jsforce retries a SOAP call after every refresh, without limit, so a session Salesforce keeps refusing
   * would have the operation refresh and retry until its timeout; and jsforce keeps only the message of a failed
   * refresh, so an unreachable token endpoint would not be told from refused credentials (errors.ts).
   */
  const refreshSession = (conn: Connection, callback: RefreshCallback): void => {
    if (Date.now() - refreshedAt < refusedAgainWithinMs) {
      callback(refreshFailure(new OperationError('ORG_AUTH_FAILED', 'Salesforce refused a session it had just issued (does the connected app have the api scope, and may this user reach the API from here?)', false)));
      return;
    }
    client.refreshToken(credentials.refreshToken).then(
      (token) => {
        refreshedAt = Date.now();
        if (token.instance_url) conn.instanceUrl = token.instance_url;
        callback(undefined, token.access_token, token);
      },
      (error: unknown) => callback(refreshFailure(toOperationError(error, 'refreshing the session'))),
    );
  };
  try {
    const token = await client.refreshToken(credentials.refreshToken);
    const conn = new jsforce.Connection({
      oauth2,
      instanceUrl: token.instance_url,
      accessToken: token.access_token,
      refreshToken: credentials.refreshToken,
      refreshFn: refreshSession,
      version: ctx.params.apiVersion ?? defaultApiVersion,
    });
    return { conn, identityUrl: token.id };
  } catch (error) {
    throw toOperationError(error, 'refreshing the access token');
  }
}
