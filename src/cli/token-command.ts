// `switchyard token create|list|revoke`: token management for the operator at the server's shell, which is
// how the first OWNER token comes to exist. `create` prints the token alone on stdout so scripts can capture it.
import { parseArgs } from 'node:util';
import { createPrisma } from '../db/prisma.js';
import { AuditService } from '../domain/audit/audit-service.js';
import { cliPrincipal } from '../domain/auth/principal.js';
import { looksLikeToken, TokenService } from '../domain/auth/token-service.js';
import { DomainError } from '../domain/errors.js';
import type { Env } from '../env.js';
import { runMigrations } from './migrate-command.js';
import type { Logger } from 'pino';
import { UsageError } from './usage-error.js';

const durationUnits: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Ten years: a longer-lived token is better made without an expiry, on purpose. */
const longestDurationMs = 3650 * 86_400_000;

export function parseDuration(value: string): number {
  const match = /^(\d+)([mhd])$/.exec(value);
  if (!match) throw new UsageError(`--expires-in must look like 30m, 12h or 90d (got "${value}")`);
  const ms = Number(match[1]) * durationUnits[match[2]!]!;
  if (ms <= 0 || ms > longestDurationMs) throw new UsageError(`--expires-in must be more than 0 and at most 3650d (got "${value}"); leave it out for a token that does not expire`);
  return ms;
}

const usage = 'usage: switchyard token create --name NAME [--role OWNER|MEMBER|VIEWER|APPLICATION] [--user NAME] [--expires-in 90d] | list | revoke ID | revoke - (the token on stdin)';

type TokenAction =
  | { kind: 'create'; name: string; role: string; user: string | undefined; expiresInMs: number | undefined }
  | { kind: 'list' }
  /** `target`: an id, a prefix, or (from stdin) the token itself. */
  | { kind: 'revoke'; target: string };

/** What the arguments ask for, or a UsageError: read before the database is touched (a mistake migrates nothing). */
async function parseTokenArgs(argv: string[]): Promise<TokenAction> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create': {
      const { values } = parseArgs({
        args: rest,
        options: {
          name: { type: 'string' },
          role: { type: 'string', default: 'MEMBER' },
          user: { type: 'string' },
          'expires-in': { type: 'string' },
        },
        strict: true,
      });
      if (!values.name) throw new UsageError('token create needs --name');
      // An empty --expires-in is a mistake, not a request for a token that never expires.
      const expiresInMs = values['expires-in'] !== undefined ? parseDuration(values['expires-in']) : undefined;
      return { kind: 'create', name: values.name, role: values.role!.toUpperCase(), user: values.user, expiresInMs };
    }
    case 'list':
      if (rest.length > 0) throw new UsageError(usage);
      return { kind: 'list' };
    case 'revoke': {
      // `-`: the token itself on stdin, so that a leaked token is revoked without landing in argv (ps, shell history).
      const fromStdin = rest[0] === '-';
      const target = fromStdin ? (await readStdin()).trim() : rest[0];
      if (!target) throw new UsageError('token revoke needs a token id or prefix, or - and the token on stdin');
      // A token itself as an argument is already in ps and the shell history: refused (and not quoted back).
      if (!fromStdin && looksLikeToken(target)) throw new UsageError('Pass a token itself on stdin (`switchyard token revoke -`), never as an argument');
      return { kind: 'revoke', target };
    }
    default:
      throw new UsageError(usage);
  }
}

export async function tokenCommand(env: Env, logger: Logger, argv: string[]): Promise<void> {
  let action: TokenAction;
  try {
    action = await parseTokenArgs(argv);
  } catch (error) {
    if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(error.message);
    throw error;
  }
  await runMigrations(env, logger);
  const prisma = createPrisma(env.DATABASE_URL, { poolSize: 2 });
  const tokens = new TokenService(prisma, new AuditService(prisma));
  try {
    switch (action.kind) {
      case 'create': {
        const { secret, token } = await tokens.create(cliPrincipal, {
          name: action.name,
          role: action.role as never,
          userName: action.user,
          expiresAt: action.expiresInMs !== undefined ? new Date(Date.now() + action.expiresInMs) : undefined,
        });
        process.stderr.write(`Created ${token.role} token "${token.name}" for user ${token.user.name} (id ${token.id}). It is shown only once, on stdout.\n`);
        process.stdout.write(`${secret}\n`);
        return;
      }
      case 'list': {
        const rows = await tokens.listAll();
        const lines = rows.map((t) =>
          [t.id, t.prefix, t.name, t.role, t.user.name, t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt < new Date() ? 'expired' : 'active', t.lastUsedAt?.toISOString() ?? '-'].join('\t'),
        );
        process.stdout.write(['ID\tPREFIX\tNAME\tROLE\tUSER\tSTATE\tLAST USED', ...lines].join('\n') + '\n');
        return;
      }
      case 'revoke': {
        const token = await tokens.findByIdOrPrefix(action.target);
        // Not quoted back: it may be a token itself, and terminals, logs and CI output keep stderr.
        if (!token) throw new UsageError('No single token matches that id, prefix or token (use the id from `switchyard token list`)');
        await tokens.revoke(cliPrincipal, token.id);
        process.stderr.write(`Revoked token "${token.name}" (${token.prefix}…)\n`);
        return;
      }
    }
  } catch (error) {
    if (error instanceof DomainError) throw new UsageError(error.message);
    throw error;
  } finally {
    await prisma.$disconnect();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
