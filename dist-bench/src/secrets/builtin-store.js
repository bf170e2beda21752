// The embedded secret store used when no Vault is configured: AES-256-GCM with a random 96-bit nonce per
// write, the secret's name as additional authenticated data (a ciphertext copied onto another name fails
// to open), and a key id so a wrong SWITCHYARD_SECRET_KEY is reported as such instead of as corruption.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { IpcGrantRegistry } from './ipc-grants.js';
export class SecretKeyMismatchError extends Error {
    constructor(name) {
        super(`Secret ${name} was written with a different SWITCHYARD_SECRET_KEY`);
    }
}
export class BuiltinSecretStore {
    prisma;
    key;
    kind = 'builtin';
    keyId;
    /** Grants live in the memory of the process that issued them: the worker that forks the child. */
    grants = new IpcGrantRegistry();
    constructor(prisma, key) {
        this.prisma = prisma;
        this.key = key;
        if (key.length !== 32)
            throw new Error('The built-in secret store needs a 32-byte key');
        this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 16);
    }
    async put(name, value) {
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
    async get(name) {
        const row = await this.prisma.secret.findUnique({ where: { name } });
        if (!row)
            return null;
        if (row.keyId !== this.keyId)
            throw new SecretKeyMismatchError(name);
        const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(row.nonce));
        decipher.setAAD(Buffer.from(name, 'utf8'));
        decipher.setAuthTag(Buffer.from(row.authTag));
        const plain = Buffer.concat([decipher.update(Buffer.from(row.ciphertext)), decipher.final()]);
        return JSON.parse(plain.toString('utf8'));
    }
    async delete(name) {
        await this.prisma.secret.deleteMany({ where: { name } });
    }
    async issueGrant(name, ttlSeconds) {
        return this.grants.issue(name, ttlSeconds);
    }
    /** Redeems an IPC grant issued by this store: the secret once, or null if spent, expired or unknown. */
    async redeem(token) {
        const name = this.grants.consume(token);
        return name === null ? null : this.get(name);
    }
}
