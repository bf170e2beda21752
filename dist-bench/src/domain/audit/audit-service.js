import { currentRequestId } from '../../request-context.js';
import { actorLabel } from '../auth/principal.js';
/**
 * Appends audit entries. Callers pass their transaction so the entry commits (or rolls back) with the
 * change it describes. Details must never carry credentials.
 */
export class AuditService {
    prisma;
    constructor(prisma) {
        this.prisma = prisma;
    }
    /** Entries newest first; `query` carries pagination and selection. */
    async list(query) {
        return this.prisma.auditEntry.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
    }
    async count() {
        return this.prisma.auditEntry.count();
    }
    async record(db, actor, action, targetType, targetId, details) {
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
