// Writing a secret and the row that names it, which live in two stores (the secret store and Postgres), so that
// neither a failed write nor a concurrent deletion of the row leaves a secret that nothing names.
import type { SecretStore, SecretValue } from '../secrets/secret-store.js';
import { NotFoundError } from './errors.js';

/**
 * Writes a new secret, then `write`s the rows that name it. The secret goes first, since a row must never name a
 * secret that does not exist; if the rows cannot be written, the secret is deleted again.
 */
export async function putSecretThen<T>(secrets: SecretStore, name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
  await secrets.put(name, value);
  try {
    return await write();
  } catch (error) {
    await secrets.delete(name).catch(() => undefined);
    throw error;
  }
}

/**
 * Replaces the secret of an existing row, then `write`s the row (an update, or an audit entry after checking it).
 * When `write` finds the row gone (a NotFoundError: a concurrent deletion removed it, and its secret, before this
 * put wrote the secret again), the secret names nothing and is deleted again. Any other failure keeps it: the
 * row still names it.
 */
export async function replaceSecretThen<T>(secrets: SecretStore, name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
  await secrets.put(name, value);
  try {
    return await write();
  } catch (error) {
    if (error instanceof NotFoundError) await secrets.delete(name).catch(() => undefined);
    throw error;
  }
}
