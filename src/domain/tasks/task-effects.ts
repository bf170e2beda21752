// What a task's outcome means beyond the task itself, applied by the worker (the child process that ran the
// operation has no database access): an org check updates its Org, a retrieval's zip becomes an Artifact,
// an authentication failure marks the org. Also prepares what an operation needs from the control plane: its
// files, and on a retry the deployment an earlier attempt started.
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Task } from '../../generated/prisma/client.js';
import { artifactParam, type ArtifactService } from '../artifacts/artifact-service.js';
import { lastStartedDeployment } from './started-deployment.js';
import type { TaskFailure } from './task-lifecycle.js';

export interface OperationFiles {
  artifactDir: string;
  sourceZip?: string;
}

interface OrgCheckResult {
  organizationId?: string;
  instanceUrl?: string;
}

interface RetrieveResult {
  artifact?: { sha256: string; sizeBytes: number; fileName: string };
}

/**
 * The task's org, if the run that just ended used the org's current credentials: it started (was claimed, before
 * its credentials were handed out) after they were last written. An outcome on credentials rotated since (a late
 * ORG_AUTH_FAILED of a deployment on a revoked refresh token, a check of the old ones) says nothing about the new.
 * The two times come from different processes (the API that wrote the credentials, the worker that claimed the
 * task), possibly on different hosts: a run that started up to `clockSkewMs` before the write still counts, so
 * that the check a rotation queues, claimed milliseconds later by a worker whose clock is a little behind, does.
 */
function ranOnCurrentCredentials(task: Task): Prisma.OrgWhereInput {
  if (!task.startedAt) return { id: task.orgId!, credentialsChangedAt: { lte: new Date(0) } }; // never ran: no effect
  return { id: task.orgId!, credentialsChangedAt: { lte: new Date(task.startedAt.getTime() + clockSkewMs) } };
}

/** How far apart the clocks of API and worker hosts may be (NTP keeps them within milliseconds). */
const clockSkewMs = 5000;

export class TaskEffects {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly artifacts: ArtifactService,
  ) {}

  /**
   * Resolves the deployment source; a missing artifact fails the task instead of reaching Salesforce. A retry
   * that follows a deployment already started (`resuming`) needs no source.
   */
  async files(task: Task, resuming = false): Promise<OperationFiles> {
    const artifactId = artifactParam(task.type, task.input);
    if (artifactId && !resuming) {
      const artifact = await this.artifacts.require(artifactId);
      return { artifactDir: this.artifacts.dir, sourceZip: this.artifacts.pathOf(artifact) };
    }
    return { artifactDir: this.artifacts.dir };
  }

  /**
   * On a retry, the deployment an earlier attempt of this run started in Salesforce: the retry follows it to its
   * end instead of starting a second one of the same package (which Salesforce would queue behind the first, or
   * refuse for a quick deploy already used).
   */
  startedDeployment(task: Task): Promise<string | undefined> {
    return task.attempts > 1 ? lastStartedDeployment(this.prisma, task) : Promise.resolve(undefined);
  }

  /** Applies a success; returns the result to store on the task. */
  async succeeded(task: Task, result: unknown): Promise<unknown> {
    if (task.type === 'ORG_CHECK' && task.orgId) {
      const check = result as OrgCheckResult;
      await this.prisma.org.updateMany({
        where: ranOnCurrentCredentials(task),
        data: {
          status: 'CONNECTED',
          lastCheckedAt: new Date(),
          ...(check.organizationId ? { sfOrgId: check.organizationId } : {}),
          ...(check.instanceUrl ? { instanceUrl: check.instanceUrl } : {}),
        },
      });
    }
    if (task.type === 'RETRIEVE') {
      const retrieved = result as RetrieveResult;
      if (retrieved.artifact) {
        const artifact = await this.artifacts.recordRetrieved(retrieved.artifact, task.id, retrieved.artifact.fileName);
        return { ...(result as object), artifactId: artifact.id } as Prisma.InputJsonValue;
      }
    }
    return result;
  }

  /** Applies a final failure: credentials that no longer work, or an org that cannot be reached, show on the Org. */
  async failed(task: Task, failure: TaskFailure): Promise<void> {
    if (!task.orgId) return;
    if (failure.code === 'ORG_AUTH_FAILED') {
      await this.prisma.org.updateMany({ where: ranOnCurrentCredentials(task), data: { status: 'AUTH_FAILED', lastCheckedAt: new Date() } });
    } else if (failure.code === 'ORG_UNREACHABLE' && task.type === 'ORG_CHECK') {
      await this.prisma.org.updateMany({ where: ranOnCurrentCredentials(task), data: { status: 'UNREACHABLE', lastCheckedAt: new Date() } });
    }
  }
}
