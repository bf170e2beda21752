// Where Salesforce credentials live. Nothing else in Switchyard holds them: the database keeps only the
// name of a secret (Org.secretRef), and only a task's child process ever reads the value.

/** A secret's value: a flat map of strings, e.g. an org's refresh token and connected-app keys. */
export type SecretValue = Record<string, string>;

export interface SecretStore {
  readonly kind: 'builtin' | 'vault';
  /** Creates or replaces the secret. */
  put(name: string, value: SecretValue): Promise<void>;
  get(name: string): Promise<SecretValue | null>;
  /** Removes the secret; removing one that does not exist is not an error. */
  delete(name: string): Promise<void>;
}
