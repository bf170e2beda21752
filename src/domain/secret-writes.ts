// Writing and deleting a secret and the row that names it, which live in two stores (the secret store and
// Postgres), so that no failure, concurrent deletion or crash leaves a secret (org credentials, above all) that
// nothing names.
//
// The order is the one that never leaves a row naming a missing secret: a secret is written before its row, a
// deleted row goes before its secret. Meanwhile a PendingSecret row notes the name, one note per write or
// deletion. When one ends, failed or not, its secret is deleted unless a row names it; a crash (or a store that
// fails just then) leaves the note, and the API's sweep (every few minutes) settles old notes the same way.
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../db/prisma.js';
import type { SecretStore, SecretValue } from '../secrets/secret-store.js';

/** A note older than this belongs to a write or deletion that will not finish: requests take seconds at most. */
export const pendingSecretMaxAgeMs = 10 * 60_000;

/** Notes the sweep reads at a time. */
const sweepBatch = 500;

/** One write's or deletion's note of a secret name. */
export interface PendingNote {
  id: string;
  name: string;
}

export interface SweepReport {
  /** Secrets deleted: their notes were old and no row names them. */
  deleted: string[];
  /** Secrets a row names, whose old notes were dropped (the process stopped after the row was written). */
  kept: string[];
  /** Secrets the store failed to delete: their notes stay for the next sweep. */
  failed: string[];
}

export class SecretWrites {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
  ) {}

  /**
   * Writes a secret (new, or replacing the one an existing row names), then `write`s the rows that name it.
   * If `write` fails, the secret stays only if a row names it: a replaced one whose row is still there, or rows
   * that were committed although their write reported an error. A secret a concurrent deletion's row no longer
   * names (the put wrote it again after the deletion deleted it) goes.
   */
  async putThen<T>(name: string, value: SecretValue, write: () => Promise<T>): Promise<T> {
    const note = await this.note(this.prisma, name);
    await this.secrets.put(name, value);
    let result: T;
    try {
      result = await write();
    } catch (error) {
      await this.finish(note);
      throw error;
    }
    await this.forget([note.id]);
    return result;
  }

  /**
   * Notes, inside the transaction that deletes the rows naming the secret, that it is to be deleted. Once that
   * transaction has committed, pass the note to finish.
   */
  noteDeletion(tx: Prisma.TransactionClient, name: string): Promise<PendingNote> {
    return this.note(tx, name);
  }

  /**
   * Ends a noted write or deletion: deletes the secret unless a row names it (after a deletion, none does), then
   * the note. A store that fails now (Vault unreachable) fails nothing, the rows being written or gone already:
   * the sweep settles the secret later, by the note, and logs a store that keeps failing.
   */
  async finish(note: PendingNote): Promise<void> {
    await this.settle(note.name, [note.id]).catch(() => undefined);
  }

  /**
   * Settles what interrupted writes and deletions left: for each secret whose notes are all older than
   * `maxAgeMs` (one with a recent note has a write or deletion under way, which settles it), deletes it unless
   * a row names it, and drops those notes. A secret the store fails to delete has its notes renewed, so it is
   * tried again after `maxAgeMs` and the others, however many, get their turn first.
   */
  async sweep(maxAgeMs: number = pendingSecretMaxAgeMs): Promise<SweepReport> {
    const cutoff = new Date(Date.now() - maxAgeMs);
    const due = await this.prisma.pendingSecret.groupBy({
      by: ['name'],
      having: { createdAt: { _max: { lt: cutoff } } },
      orderBy: { name: 'asc' },
      take: sweepBatch,
    });
    const names = due.map((group) => group.name);
    const notes = await this.prisma.pendingSecret.findMany({ where: { name: { in: names }, createdAt: { lt: cutoff } }, select: { id: true, name: true } });
    const report: SweepReport = { deleted: [], kept: [], failed: [] };
    for (const name of names) {
      const ids = notes.filter((note) => note.name === name).map((note) => note.id);
      try {
        report[await this.settle(name, ids)].push(name);
      } catch {
        report.failed.push(name);
        await this.prisma.pendingSecret.updateMany({ where: { id: { in: ids } }, data: { createdAt: new Date() } }).catch(() => undefined);
      }
    }
    return report;
  }

  /** Deletes the secret unless a row names it, then the notes `ids`. Throws (keeping the notes) if either store fails. */
  private async settle(name: string, ids: string[]): Promise<'deleted' | 'kept'> {
    const named = await this.isNamed(name);
    if (!named) await this.secrets.delete(name);
    await this.forget(ids);
    return named ? 'kept' : 'deleted';
  }

  /**
   * Whether a row names the secret. The rows that hold secret names are orgs, webhook sources and notification
   * subscribers: test/secret-writes.test.ts fails when schema.prisma gives another model a secretRef.
   */
  private async isNamed(name: string): Promise<boolean> {
    const where = { secretRef: name };
    const counts = await Promise.all([
      this.prisma.org.count({ where }),
      this.prisma.webhookSource.count({ where }),
      this.prisma.notificationSubscriber.count({ where }),
    ]);
    return counts.some((count) => count > 0);
  }

  private async note(db: PrismaClient | Prisma.TransactionClient, name: string): Promise<PendingNote> {
    const note = { id: randomUUID(), name };
    await db.pendingSecret.create({ data: note });
    return note;
  }

  /** Drops notes; one left behind costs the sweep one look. */
  private async forget(ids: string[]): Promise<void> {
    await this.prisma.pendingSecret.deleteMany({ where: { id: { in: ids } } }).catch(() => undefined);
  }
}
