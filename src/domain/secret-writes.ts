// Writing and deleting a secret and the row that names it, which live in two stores (the secret store and
// Postgres), so that no failure, concurrent deletion or crash leaves a secret (org credentials, above all) that
// nothing names.
//
// The order is the one that never leaves a row naming a missing secret: a new secret is written before its row,
// a deleted row goes before its secret. In between, a PendingSecret row notes the name. A failure in between
// deletes the secret at once; a crash leaves the note, and the API's sweep (sweep(), every few minutes) deletes
// the secret of an old note that no row names.
import type { Prisma, PrismaClient } from '../db/prisma.js';
import type { SecretStore, SecretValue } from '../secrets/secret-store.js';
import { NotFoundError } from './errors.js';

/** A note older than this belongs to a write or deletion that will not finish: requests take seconds at most. */
export const pendingSecretMaxAgeMs = 10 * 60_000;

export interface SweepReport {
  /** Secrets deleted: their notes were old and no row names them. */
  deleted: string[];
  /** Old notes of secrets a row does name (the row was committed, the process stopped before dropping the note). */
  kept: string[];
}

/**
 * Notes a secret name. Concurrent writers of one secret (rotations racing each other and a removal) share the
 * note: INSERT … ON CONFLICT DO NOTHING, as an upsert would fail on the unique name when two insert at once.
 */
async function note(db: PrismaClient | Prisma.TransactionClient, name: string): Promise<void> {
  await db.pendingSecret.createMany({ data: [{ name }], skipDuplicates: true });
}

export class SecretWrites {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
  ) {}

  /**
   * Writes a new secret, then `write`s the rows that name it. If the rows cannot be written, the secret is
   * deleted again.
   */
  putThen<T>(name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
    return this.putAnd(name, value, write, () => true);
  }

  /**
   * Replaces the secret of an existing row, then `write`s the row (an update, or an audit entry after checking
   * it). When `write` finds the row gone (a NotFoundError: a concurrent deletion removed it, and its secret,
   * before this put wrote the secret again), the secret names nothing and is deleted again. Any other failure
   * keeps it: the row still names it.
   */
  replaceThen<T>(name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
    return this.putAnd(name, value, write, (error) => error instanceof NotFoundError);
  }

  /**
   * Notes, inside the transaction that deletes the rows naming the secret, that it is to be deleted; then
   * call deleteNoted once that transaction has committed.
   */
  async noteDeletion(tx: Prisma.TransactionClient, name: string): Promise<void> {
    await note(tx, name);
  }

  /**
   * Deletes a secret noted by noteDeletion, then its note. A store that fails now (Vault unreachable) does not
   * fail the deletion, whose rows are gone already: the sweep deletes the secret later, by its note.
   */
  async deleteNoted(name: string): Promise<void> {
    await this.secrets.delete(name).then(
      () => this.forget(name),
      () => undefined,
    );
  }

  /** Finishes what crashes left: deletes the secrets of notes older than `maxAgeMs` that no row names. */
  async sweep(maxAgeMs: number = pendingSecretMaxAgeMs): Promise<SweepReport> {
    const notes = await this.prisma.pendingSecret.findMany({ where: { createdAt: { lt: new Date(Date.now() - maxAgeMs) } }, orderBy: { name: 'asc' } });
    const names = notes.map((note) => note.name);
    const named = new Set(
      (
        await Promise.all([
          this.prisma.org.findMany({ where: { secretRef: { in: names } }, select: { secretRef: true } }),
          this.prisma.webhookSource.findMany({ where: { secretRef: { in: names } }, select: { secretRef: true } }),
          this.prisma.notificationSubscriber.findMany({ where: { secretRef: { in: names } }, select: { secretRef: true } }),
        ])
      ).flatMap((rows) => rows.map((row) => row.secretRef)),
    );
    const report: SweepReport = { deleted: [], kept: [] };
    for (const name of names) {
      if (named.has(name)) report.kept.push(name);
      else {
        await this.secrets.delete(name);
        report.deleted.push(name);
      }
      await this.forget(name);
    }
    return report;
  }

  private async putAnd<T>(name: string, value: SecretValue, write: () => Promise<T>, orphans: (error: unknown) => boolean): Promise<T> {
    await note(this.prisma, name);
    await this.secrets.put(name, value);
    let result: T;
    try {
      result = await write();
    } catch (error) {
      // A secret that names nothing goes at once; if the store fails now, its note leaves it to the sweep.
      if (!orphans(error)) await this.forget(name);
      else await this.secrets.delete(name).then(() => this.forget(name), () => undefined);
      throw error;
    }
    await this.forget(name);
    return result;
  }

  /** Drops a note; a note left behind costs the sweep one look. */
  private async forget(name: string): Promise<void> {
    await this.prisma.pendingSecret.deleteMany({ where: { name } }).catch(() => undefined);
  }
}
