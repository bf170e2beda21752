// Where Salesforce credentials live. Nothing else in Switchyard holds them: the database keeps only the
// name of a secret (Org.secretRef), and only a task's child process ever sees the value, which it obtains
// by redeeming a single-use, short-lived grant (see src/workers/).

/** A secret's value: a flat map of strings, e.g. an org's refresh token and connected-app keys. */
export type SecretValue = Record<string, string>;

/**
 * A single-use, short-lived right to read one secret, handed to a task's child process over IPC.
 * - `vault`: a Vault response-wrapping token; the child unwraps it itself at `address` (sys/wrapping/unwrap).
 * - `ipc`: a built-in store grant; the child sends the token back to its parent over IPC, which checks it
 *   (unused, unexpired) and answers with the value. Either way the grant is worthless once redeemed.
 */
export type CredentialGrant =
  | { kind: 'vault'; address: string; namespace?: string; token: string; expiresAt: string }
  | { kind: 'ipc'; token: string; expiresAt: string };

export interface SecretStore {
  readonly kind: 'builtin' | 'vault';
  /** Creates or replaces the secret. */
  put(name: string, value: SecretValue): Promise<void>;
  get(name: string): Promise<SecretValue | null>;
  /** Removes the secret; removing one that does not exist is not an error. */
  delete(name: string): Promise<void>;
  /** Issues a grant for the secret valid for at most `ttlSeconds` (Vault wrap TTL ≤ 60 s). */
  issueGrant(name: string, ttlSeconds: number): Promise<CredentialGrant>;
  /** Stops what the store runs in the background (a token renewal), if anything. */
  close?(): void;
}
