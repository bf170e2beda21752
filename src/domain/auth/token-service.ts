// API tokens: 32 random bytes behind a recognisable prefix (so secret scanners and people can spot a leaked
// one), stored only as a SHA-256 hash. A token is shown once, when it is created.
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { ApiToken, User } from '../../generated/prisma/client.js';
import type { Role } from '../../generated/prisma/enums.js';
import type { AuditService } from '../audit/audit-service.js';
import { NotFoundError, ValidationFailedError } from '../errors.js';
import { parseInput } from '../validation.js';
import type { Principal } from './principal.js';
import { isUuid } from '../ids.js';

export const tokenPrefix = 'syt_';
const tokenPattern = /^syt_[A-Za-z0-9_-]{43}$/;

/** Whether the text has the form of a token itself (not an id or a prefix). */
export function looksLikeToken(text: string): boolean {
  return tokenPattern.test(text);
}
/** How stale lastUsedAt may get before a request refreshes it; avoids a write on every request. */
const lastUsedResolutionMs = 60_000;

// Names show in `token list` (tab-separated lines) and in audit actors (`user/token`): no control characters, and
// no `/` in a user name.
const printable = /^[^\p{Cc}]*$/u;
const createTokenInput = z.object({
  name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').regex(printable, 'must not contain control characters (tabs, line breaks, escapes)'),
  role: z.enum(['OWNER', 'MEMBER', 'VIEWER', 'APPLICATION']),
  userName: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .regex(printable, 'must not contain control characters (tabs, line breaks, escapes)')
    .regex(/^[^/]*$/, 'must not contain /')
    .optional(),
  expiresAt: z.date().optional(),
});
export type CreateTokenInput = z.input<typeof createTokenInput>;

export interface CreatedToken {
  token: ApiToken & { user: User };
  /** The plaintext token: returned once, never stored. */
  secret: string;
}

/** Whether a stored token still authenticates at `now`: not revoked, not expired. */
function authenticates(token: { revokedAt: Date | null; expiresAt: Date | null }, now: number): boolean {
  return !token.revokedAt && !(token.expiresAt && token.expiresAt.getTime() <= now);
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export class TokenService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly audit: AuditService,
    /** Told after a revocation commits, so open WebSocket connections of the token can be closed. */
    private readonly onRevoked: (tokenId: string) => Promise<void> = async () => undefined,
  ) {}

  async create(actor: Principal, input: CreateTokenInput): Promise<CreatedToken> {
    const data = parseInput(createTokenInput, input);
    if (data.expiresAt && data.expiresAt.getTime() <= Date.now()) {
      throw ValidationFailedError.single(['expiresAt'], 'must be in the future');
    }
    const secret = tokenPrefix + randomBytes(32).toString('base64url');
    const userName = data.userName ?? (actor.kind === 'token' ? actor.userName : data.name);
    // The token's name becomes the user's when none is given (the CLI's first token): the user-name rule holds for it too.
    if (userName.includes('/')) throw ValidationFailedError.single([data.userName ? 'userName' : 'name'], 'must not contain / (it names a user here)');
    return this.prisma.$transaction(async (tx) => {
      const user = await tx.user.upsert({ where: { name: userName }, create: { name: userName }, update: {} });
      const token = await tx.apiToken.create({
        data: {
          name: data.name,
          role: data.role as Role,
          prefix: secret.slice(0, 12),
          hash: hashToken(secret),
          expiresAt: data.expiresAt ?? null,
          userId: user.id,
        },
        include: { user: true },
      });
      await this.audit.record(tx, actor, 'token.create', 'ApiToken', token.id, {
        name: token.name,
        role: token.role,
        user: user.name,
      });
      return { token, secret };
    });
  }

  /** The principal a bearer token stands for, or null when it is unknown, malformed, expired or revoked. */
  async authenticate(secret: string): Promise<Principal | null> {
    return (await this.authenticateWithExpiry(secret))?.principal ?? null;
  }

  /** As `authenticate`, with the token's expiry, for callers that keep the principal for a while. */
  async authenticateWithExpiry(secret: string): Promise<{ principal: Principal; expiresAt: Date | null } | null> {
    if (!tokenPattern.test(secret)) return null;
    const token = await this.prisma.apiToken.findUnique({ where: { hash: hashToken(secret) }, include: { user: true } });
    const now = Date.now();
    if (!token || !authenticates(token, now)) return null;
    if (!token.lastUsedAt || now - token.lastUsedAt.getTime() > lastUsedResolutionMs) {
      // Best effort: a failed bookkeeping write must not fail the request.
      void this.prisma.apiToken
        .update({ where: { id: token.id }, data: { lastUsedAt: new Date(now) } })
        .catch(() => undefined);
    }
    const principal: Principal = {
      kind: 'token',
      userId: token.userId,
      userName: token.user.name,
      tokenId: token.id,
      tokenName: token.name,
      role: token.role,
    };
    return { principal, expiresAt: token.expiresAt };
  }

  async revoke(actor: Principal, tokenId: string): Promise<ApiToken> {
    const revoked = await this.prisma.$transaction(async (tx) => {
      const token = await tx.apiToken.findUnique({ where: { id: tokenId } });
      if (!token) throw new NotFoundError('TOKEN_NOT_FOUND', 'No API token with that id');
      if (token.revokedAt) return token;
      const revoked = await tx.apiToken.update({ where: { id: tokenId }, data: { revokedAt: new Date() } });
      await this.audit.record(tx, actor, 'token.revoke', 'ApiToken', token.id, { name: token.name });
      return revoked;
    });
    await this.onRevoked(tokenId).catch(() => undefined);
    return revoked;
  }

  /** Tokens newest first, including revoked and expired ones; `query` carries pagination and selection. */
  async list<T extends Omit<Prisma.ApiTokenFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.apiToken.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  async count(): Promise<number> {
    return this.prisma.apiToken.count();
  }

  /**
   * Of `tokenIds`, those that no longer authenticate (deleted, revoked or expired), in one query; none when
   * Postgres could not say (ask again later). Long-lived connections and streams ask this now and then.
   */
  async noLongerValid(tokenIds: string[]): Promise<string[]> {
    if (tokenIds.length === 0) return [];
    const found = await this.prisma.apiToken
      .findMany({ where: { id: { in: tokenIds } }, select: { id: true, revokedAt: true, expiresAt: true } })
      .catch(() => null);
    if (!found) return [];
    const now = Date.now();
    const valid = new Set(found.filter((token) => authenticates(token, now)).map((token) => token.id));
    return tokenIds.filter((id) => !valid.has(id));
  }

  async find<T extends Omit<Prisma.ApiTokenFindUniqueArgs, 'where'>>(tokenId: string, query?: T) {
    return this.prisma.apiToken.findUnique({ ...(query as T), where: { id: tokenId } });
  }

  /** For the CLI, which lists every token without pagination. */
  async listAll(): Promise<Array<ApiToken & { user: User }>> {
    return this.prisma.apiToken.findMany({ include: { user: true }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  /** For the CLI: the one token with this id or prefix, or the token itself (someone revoking a leaked token pastes it). */
  async findByIdOrPrefix(idOrPrefix: string): Promise<ApiToken | null> {
    const matches = await this.prisma.apiToken.findMany({
      where: isUuid(idOrPrefix) ? { id: idOrPrefix } : tokenPattern.test(idOrPrefix) ? { hash: hashToken(idOrPrefix) } : { prefix: idOrPrefix },
      take: 2,
    });
    return matches.length === 1 ? matches[0]! : null;
  }
}
