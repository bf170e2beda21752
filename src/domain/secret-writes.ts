// Writing a secret and the row that names it, which live in two stores (the secret store and Postgres), so that
// neither a failed write nor a concurrent deletion of the row leaves a secret that nothing names.
import type { SecretStore, SecretValue } from '../secrets/secret-store.js';
import { NotFoundError } from './errors.js';

/** Writes the secret, then `write`; deletes the secret again when `write` fails in a way `orphans` says leaves it unnamed. */
async function putSecretAnd<T>(secrets: SecretStore, name: string, value: SecretValue, write: () => Promise<T>, orphans: (error: unknown) => boolean): Promise<T> {
  await secrets.put(name, value);
  try {
    return await write();
  } catch (error) {
    if (orphans(error)) await secrets.delete(name).catch(() => undefined);
    throw error;
  }
}

/**
 * Writes a new secret, then `write`s the rows that name it. The secret goes first, since a row must never name a
 * secret that does not exist; if the rows cannot be written, the secret is deleted again.
 */
export function putSecretThen<T>(secrets: SecretStore, name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
  return putSecretAnd(secrets, name, value, write, () => true);
}

/**
 * Replaces the secret of an existing row, then `write`s the row (an update, or an audit entry after checking it).
 * When `write` finds the row gone (a NotFoundError: a concurrent deletion removed it, and its secret, before this
 * put wrote the secret again), the secret names nothing and is deleted again. Any other failure keeps it: the
 * row still names it.
 */
export function replaceSecretThen<T>(secrets: SecretStore, name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
  return putSecretAnd(secrets, name, value, write, (error) => error instanceof NotFoundError);
}
