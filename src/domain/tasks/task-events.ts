// The durable, ordered log of everything that happens to a task. Sequence numbers come from bumping
// Task.lastEventSeq inside the writer's transaction: the row lock that update takes serialises concurrent
// writers of one task, so seq is gap-free and in commit order, which live-subscription replay relies on.
import type { Prisma } from '../../db/prisma.js';
import type { TaskEventKind, TaskStatus } from '../../generated/prisma/enums.js';

export async function appendEvent(
  tx: Prisma.TransactionClient,
  taskId: string,
  kind: TaskEventKind,
  payload: Prisma.InputJsonValue,
): Promise<number> {
  const { lastEventSeq: seq } = await tx.task.update({
    where: { id: taskId },
    data: { lastEventSeq: { increment: 1 } },
    select: { lastEventSeq: true },
  });
  await tx.taskEvent.create({ data: { taskId, seq, kind, payload } });
  return seq;
}

export function appendStatusChange(
  tx: Prisma.TransactionClient,
  taskId: string,
  status: TaskStatus,
  details: Record<string, string> | null,
): Promise<number> {
  return appendEvent(tx, taskId, 'STATUS', { status, ...(details ?? {}) });
}
