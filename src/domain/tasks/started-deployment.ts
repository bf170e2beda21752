// The deployment an earlier attempt of a task's current run started in Salesforce. A deployment goes on
// when the attempt that started it fails, so a retry follows it (TaskEffects.startedDeployment) and a cancel
// of a task waiting for its retry cancels it (TaskService.cancel), instead of leaving it unaccounted for.
import type { PrismaClient } from '../../db/prisma.js';
import type { Task } from '../../generated/prisma/client.js';

/** Types whose operation starts a deployment in Salesforce, which goes on when the attempt that started it fails. */
export const deploymentTypes: ReadonlySet<string> = new Set(['DEPLOY', 'VALIDATE', 'QUICK_DEPLOY']);

/**
 * The deploy id the last PROGRESS event of the task's current run carries (operations record it as soon as the
 * deployment has started), if it is a deployment type and has run at all. `retryTask` starts a new run: events
 * from before its `retriedBy` STATUS event do not count. (A repeated submit's `resubmittedBy` needs no such mark: it
 * queues only a task that never ran, which has no deployment to follow.)
 */
export async function lastStartedDeployment(prisma: PrismaClient, task: Pick<Task, 'id' | 'type' | 'attempts'>): Promise<string | undefined> {
  if (task.attempts < 1 || !deploymentTypes.has(task.type)) return undefined;
  const rows = await prisma.$queryRaw<Array<{ deployId: string }>>`
    SELECT payload->'details'->>'deployId' AS "deployId"
    FROM "TaskEvent"
    WHERE "taskId" = ${task.id}::uuid AND kind = 'PROGRESS' AND payload->'details'->>'deployId' IS NOT NULL
      AND seq > COALESCE(
        (SELECT max(seq) FROM "TaskEvent" WHERE "taskId" = ${task.id}::uuid AND kind = 'STATUS' AND payload ? 'retriedBy'),
        0)
    ORDER BY seq DESC
    LIMIT 1`;
  return rows[0]?.deployId;
}
