import type { Role } from '../../generated/prisma/enums.js';

/** Who is acting: an API token's holder, or the local operator at the CLI. */
export interface Principal {
  kind: 'token' | 'cli';
  userId: string | null;
  userName: string;
  tokenId: string | null;
  tokenName: string | null;
  role: Role;
}

export const cliPrincipal: Principal = {
  kind: 'cli',
  userId: null,
  userName: 'cli',
  tokenId: null,
  tokenName: null,
  role: 'OWNER',
};

/** The label stored as Task.requestedBy and AuditEntry.actor. */
export function actorLabel(principal: Principal): string {
  return principal.kind === 'cli' ? 'cli' : `${principal.userName}/${principal.tokenName ?? '?'}`;
}
