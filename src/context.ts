// The per-operation context, built the same way for HTTP requests and WebSocket subscriptions (both go
// through Yoga's envelop, see server/create-app.ts).
import type { Logger } from 'pino';
import type { Principal } from './domain/auth/principal.js';
import type { TaskEventFeed } from './events/task-event-feed.js';
import type { Services } from './services.js';

export interface Context {
  principal: Principal | null;
  services: Services;
  /** Live task events on this API replica (subscriptions). */
  feed: TaskEventFeed;
  requestId: string;
  logger: Logger;
}

/** Reads `Bearer <token>` from an Authorization header value. */
export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

export interface ContextInput {
  authorization: string | null | undefined;
  /** Already authenticated (a WebSocket connection authenticates once, when it opens). */
  principal?: Principal;
  requestId: string;
  services: Services;
  feed: TaskEventFeed;
  logger: Logger;
}

export interface AuthenticatedContext extends Context {
  /** True when a credential was presented but did not authenticate (unknown, expired or revoked). */
  rejectedCredential: boolean;
}

export async function createContext(input: ContextInput): Promise<AuthenticatedContext> {
  const token = bearerToken(input.authorization);
  const principal = input.principal ?? (token ? await input.services.tokens.authenticate(token) : null);
  return {
    principal,
    rejectedCredential: input.authorization != null && input.authorization !== '' && principal === null,
    services: input.services,
    feed: input.feed,
    requestId: input.requestId,
    logger: input.logger.child({ requestId: input.requestId, actor: principal ? `${principal.userName}/${principal.tokenName}` : undefined }),
  };
}
