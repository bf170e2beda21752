// Deleting rows past their retention (webhook deliveries, notification attempts): a batch at a time, so that no
// statement holds many row locks or runs long on a big table.
import { Prisma, type PrismaClient } from './prisma.js';

/** The tables pruned this way, each by its timestamp column (fixed names: no text from outside becomes SQL). */
const timestampOf = { WebhookDelivery: 'receivedAt', NotificationAttempt: 'createdAt' } as const;

/** Deletes the rows of `table` older than `cutoff`, `batch` at a time; returns how many. */
export async function pruneRows(prisma: PrismaClient, table: keyof typeof timestampOf, cutoff: Date, batch = 1000): Promise<number> {
  const from = Prisma.raw(`"${table}"`);
  const at = Prisma.raw(`"${timestampOf[table]}"`);
  let deleted = 0;
  for (;;) {
    const count = await prisma.$executeRaw`DELETE FROM ${from} WHERE id IN (SELECT id FROM ${from} WHERE ${at} < ${cutoff} ORDER BY ${at} LIMIT ${batch})`;
    deleted += count;
    if (count < batch) return deleted;
  }
}
