// An HTTP(S) POST to a URL a user gave (a notification subscriber's), which reaches only what the
// OutboundAddressPolicy allows. node:http rather than fetch: fetch cannot be given the DNS lookup that checks
// every address a name resolves to at connection time.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RefusedAddressError, type OutboundAddressPolicy } from './outbound-address-policy.js';

export interface GuardedPost {
  headers: Record<string, string>;
  body: string;
  /** From the DNS lookup until the response's status arrives; past it, throws the signal's TimeoutError. */
  timeoutMs: number;
}

/**
 * POSTs the body and resolves with the response's status (redirects are not followed, the response body is
 * not read). Throws RefusedAddressError, without sending anything, when the URL's host, or an address its name
 * resolves to, may not be reached.
 */
export async function guardedPost(url: URL, post: GuardedPost, policy: OutboundAddressPolicy): Promise<number> {
  const refusal = policy.addressRefusal(url);
  if (refusal) throw new RefusedAddressError(refusal);
  const signal = AbortSignal.timeout(post.timeoutMs);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = request(url, {
      method: 'POST',
      headers: { ...post.headers, 'content-length': String(Buffer.byteLength(post.body)) },
      lookup: policy.lookup,
      signal,
      // Never a URL's user name and password as Basic authentication (node:http's default): receivers check the
      // signature, and stored URLs have none.
      auth: undefined,
      // A connection of its own: a pooled socket to the same host may have been opened by other code (a Vault
      // client, say) without this lookup.
      agent: false,
    });
    outgoing.on('response', resolve);
    outgoing.on('error', (error) => reject(signal.aborted ? signal.reason : error));
    outgoing.end(post.body);
  });
  response.destroy(); // nothing in the body is used; a large one is not read
  return response.statusCode ?? 0;
}
