import type { Context } from '../context.js';
import type { Principal } from '../domain/auth/principal.js';
import { ValidationFailedError } from '../domain/errors.js';
import { rawId } from '../domain/ids.js';

/**
 * Accepts a node's global id (what `id` fields return) or, for CLI convenience, its raw UUID. Anything else,
 * including another type's global id, is a VALIDATION_FAILED at `path`.
 */
export function parseNodeId(id: string | number, typename: string, path: string[]): string {
  const raw = rawId(String(id), typename);
  if (!raw) throw ValidationFailedError.single(path, `must be the id of a ${typename}`);
  return raw;
}

/** The acting principal. Operations only execute authenticated (server/authentication.ts), so it exists. */
export function actor(ctx: Context): Principal {
  if (!ctx.principal) throw new Error('Resolver ran without an authenticated principal');
  return ctx.principal;
}
