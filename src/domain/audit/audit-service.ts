import type { Prisma, PrismaClient } from '../../db/prisma.js';
import { currentRequestId } from '../../request-context.js';
import { actorLabel, type Principal } from '../auth/principal.js';

type Db = PrismaClient | Prisma.TransactionClient;

/**
 * Appends audit entries. Callers pass their transaction so the entry commits (or rolls back) with the
 * change it describes. Details must never carry credentials.
 */
export class AuditService {
  constructor(private readonly prisma: PrismaClient) {}

  /** Entries newest first; `query` carries pagination and selection. */
  async list<T extends Omit<Prisma.AuditEntryFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.auditEntry.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  async count(): Promise<number> {
    return this.prisma.auditEntry.count();
  }

  async record(
    db: Db,
    actor: Principal,
    action: string,
    targetType: string,
    targetId: string,
    details?: Prisma.InputJsonValue,
  ): Promise<void> {
    await db.auditEntry.create({
      data: {
        actor: actorLabel(actor),
        action,
        targetType,
        targetId,
        details: details ?? undefined,
        requestId: currentRequestId() ?? null,
      },
    });
  }
}
