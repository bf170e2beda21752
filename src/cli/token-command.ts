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

export async function tokenCommand(env: Env, logger: Logger, argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  await runMigrations(env, logger);
  const prisma = createPrisma(env.DATABASE_URL, { poolSize: 2 });
  const tokens = new TokenService(prisma, new AuditService(prisma));
  try {
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
        const role = values.role!.toUpperCase();
        // An empty --expires-in is a mistake, not a request for a token that never expires.
        const expiresAt = values['expires-in'] !== undefined ? new Date(Date.now() + parseDuration(values['expires-in'])) : undefined;
        const { secret, token } = await tokens.create(cliPrincipal, {
          name: values.name,
          role: role as never,
          userName: values.user,
          expiresAt,
        });
        process.stderr.write(`Created ${token.role} token "${token.name}" for user ${token.user.name} (id ${token.id}). It is shown only once:\n`);
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
        // `-`: the token itself on stdin, so that a leaked token is revoked without landing in argv (ps, shell history).
        const target = rest[0] === '-' ? (await readStdin()).trim() : rest[0];
        if (!target) throw new UsageError('token revoke needs a token id or prefix, or - and the token on stdin');
        // A token itself as an argument is already in ps and the shell history: refused (and not quoted back).
        if (rest[0] !== '-' && looksLikeToken(target)) throw new UsageError('Pass a token itself on stdin (`switchyard token revoke -`), never as an argument');
        const token = await tokens.findByIdOrPrefix(target);
        // Not quoted back: it may be a token itself, and terminals, logs and CI output keep stderr.
        if (!token) throw new UsageError('No single token matches that id, prefix or token (use the id from `switchyard token list`)');
        await tokens.revoke(cliPrincipal, token.id);
        process.stderr.write(`Revoked token "${token.name}" (${token.prefix}…)\n`);
        return;
      }
      default:
        throw new UsageError('usage: switchyard token create --name NAME [--role OWNER|MEMBER|VIEWER|APPLICATION] [--user NAME] [--expires-in 90d] | list | revoke ID | revoke - (the token on stdin)');
    }
  } catch (error) {
    if (error instanceof DomainError) throw new UsageError(error.message);
    if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(error.message);
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
