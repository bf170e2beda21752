// The embedded secret store used when no Vault is configured: AES-256-GCM with a random 96-bit nonce per
// write, the secret's name as additional authenticated data (a ciphertext copied onto another name fails
// to open), and a key id so a wrong SWITCHYARD_SECRET_KEY is reported as such instead of as corruption.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/prisma.js';
import { IpcGrantRegistry } from './ipc-grants.js';
import type { CredentialGrant, SecretStore, SecretValue } from './secret-store.js';

/** A stored secret that cannot be read with this store's key, now or on any retry. */
export class UnreadableSecretError extends Error {}

export class SecretKeyMismatchError extends UnreadableSecretError {
  constructor(name: string) {
    super(`Secret ${name} was written with a different SWITCHYARD_SECRET_KEY`);
  }
}

export class BuiltinSecretStore implements SecretStore {
  readonly kind = 'builtin' as const;
  private readonly keyId: string;
  /** Grants live in the memory of the process that issued them: the worker that forks the child. */
  readonly grants = new IpcGrantRegistry();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly key: Buffer,
  ) {
    if (key.length !== 32) throw new Error('The built-in secret store needs a 32-byte key');
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 16);
  }

  async put(name: string, value: SecretValue): Promise<void> {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(name, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    const sealed = { ciphertext, nonce, authTag: cipher.getAuthTag(), keyId: this.keyId };
    await this.prisma.secret.upsert({
      where: { name },
      create: { name, ...sealed },
      update: { ...sealed, version: { increment: 1 } },
    });
  }

  async get(name: string): Promise<SecretValue | null> {
    const row = await this.prisma.secret.findUnique({ where: { name } });
    if (!row) return null;
    if (row.keyId !== this.keyId) throw new SecretKeyMismatchError(name);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(row.nonce));
      decipher.setAAD(Buffer.from(name, 'utf8'));
      decipher.setAuthTag(Buffer.from(row.authTag));
      const plain = Buffer.concat([decipher.update(Buffer.from(row.ciphertext)), decipher.final()]);
      return JSON.parse(plain.toString('utf8')) as SecretValue;
    } catch {
      // The authentication tag does not match (the row was altered or copied onto another name), or the plaintext
      // is not JSON: nothing about it changes by trying again. The cause stays here (it is about secret bytes).
      throw new UnreadableSecretError(`Secret ${name} cannot be decrypted: it was altered, or copied from another name`);
    }
  }

  async delete(name: string): Promise<void> {
    await this.prisma.secret.deleteMany({ where: { name } });
  }

  async issueGrant(name: string, ttlSeconds: number): Promise<CredentialGrant> {
    return this.grants.issue(name, ttlSeconds);
  }

  /**
   * Redeems an IPC grant issued by this store: the secret once, or null if spent, expired or unknown. Throws
   * what reading it threw: an UnreadableSecretError, or the database's error (the grant is spent either way).
   */
  async redeem(token: string): Promise<SecretValue | null> {
    const name = this.grants.consume(token);
    return name === null ? null : this.get(name);
  }
}
