import { finalTaskStatuses } from './task-states.js';
export function statusEvent(status, details = {}) {
    return { kind: 'STATUS', payload: { status, ...details } };
}
export class TaskJournal {
    prisma;
    publisher;
    onFinished;
    constructor(prisma, publisher, 
    /** Told when a task reaches a final status (outbound notifications); failures are its own business. */
    onFinished = async () => undefined) {
        this.prisma = prisma;
        this.publisher = publisher;
        this.onFinished = onFinished;
    }
    /**
     * Applies `changes` to the task when its status is one of `from` (any status when null), appending
     * `events` in order. Returns null when the task was no longer in `from` (somebody else moved it first).
     */
    async change(taskId, from, changes, events, options = {}) {
        const result = await this.prisma.$transaction(async (tx) => {
            const where = from ? { id: taskId, status: { in: [...from] } } : { id: taskId };
            const { count } = await tx.task.updateMany({ where, data: { ...changes, lastEventSeq: { increment: events.length } } });
            if (count === 0)
                return null;
            return this.writeEvents(tx, taskId, events, options);
        });
        if (result)
            await this.announce(result.task, result.rows);
        return result?.task ?? null;
    }
    /** Creates a task together with its first STATUS event, in one transaction. */
    async create(data, details = {}) {
        const result = await this.prisma.$transaction(async (tx) => {
            const created = await tx.task.create({ data: { ...data, lastEventSeq: 1 } });
            return this.writeEvents(tx, created.id, [statusEvent(created.status, details)], { newJob: true });
        });
        await this.announce(result.task, result.rows);
        return result.task;
    }
    async writeEvents(tx, taskId, events, options) {
        let task = await tx.task.findUniqueOrThrow({ where: { id: taskId } });
        const firstSeq = task.lastEventSeq - events.length + 1;
        if (options.newJob)
            task = await tx.task.update({ where: { id: taskId }, data: { jobId: `${taskId}-${firstSeq}` } });
        const rows = [];
        for (const [index, event] of events.entries()) {
            rows.push(await tx.taskEvent.create({ data: { taskId, seq: firstSeq + index, kind: event.kind, payload: event.payload } }));
        }
        return { task, rows };
    }
    async announce(task, rows) {
        const messages = rows.map((row) => ({
            taskId: task.id,
            seq: row.seq,
            kind: row.kind,
            payload: row.payload,
            createdAt: row.createdAt.toISOString(),
            task: { status: task.status, type: task.type, queue: task.queue, source: task.source, orgAlias: task.orgAlias, progress: task.progress },
        }));
        // Best effort: the durable log has the events; live listeners catch up from Postgres.
        await this.publisher.publish(messages).catch(() => undefined);
        const final = rows.some((row) => row.kind === 'STATUS' && finalTaskStatuses.includes(row.payload.status ?? ''));
        if (final)
            await this.onFinished(task).catch(() => undefined);
    }
}
