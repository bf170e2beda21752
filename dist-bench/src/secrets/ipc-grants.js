// Grants of the built-in store. The plaintext never leaves the worker's memory until a child redeems its
// grant over IPC; a grant is a random token kept only in this process, used once, and expiring quickly.
import { randomBytes } from 'node:crypto';
export class IpcGrantRegistry {
    pending = new Map();
    issue(name, ttlSeconds) {
        this.sweep();
        const token = randomBytes(32).toString('base64url');
        const expiresAt = Date.now() + ttlSeconds * 1000;
        this.pending.set(token, { name, expiresAt });
        return { kind: 'ipc', token, expiresAt: new Date(expiresAt).toISOString() };
    }
    /** The secret's name if the token is live; the token is spent either way. */
    consume(token) {
        const grant = this.pending.get(token);
        this.pending.delete(token);
        if (!grant || grant.expiresAt <= Date.now())
            return null;
        return grant.name;
    }
    sweep() {
        const now = Date.now();
        for (const [token, grant] of this.pending)
            if (grant.expiresAt <= now)
                this.pending.delete(token);
    }
}
