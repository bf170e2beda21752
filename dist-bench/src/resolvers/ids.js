import { decodeGlobalID } from '@pothos/plugin-relay';
import { ValidationFailedError } from '../domain/errors.js';
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * Accepts a node's global id (what `id` fields return) or, for CLI convenience, its raw UUID. Anything else,
 * including another type's global id, is a VALIDATION_FAILED at `path`.
 */
export function parseNodeId(id, typename, path) {
    const value = String(id);
    if (uuidPattern.test(value))
        return value.toLowerCase();
    try {
        const decoded = decodeGlobalID(value);
        if (decoded.typename === typename && uuidPattern.test(decoded.id))
            return decoded.id.toLowerCase();
    }
    catch {
        // fall through to the validation error
    }
    throw ValidationFailedError.single(path, `must be the id of a ${typename}`);
}
/** The acting principal. Operations only execute authenticated (server/authentication.ts), so it exists. */
export function actor(ctx) {
    if (!ctx.principal)
        throw new Error('Resolver ran without an authenticated principal');
    return ctx.principal;
}
