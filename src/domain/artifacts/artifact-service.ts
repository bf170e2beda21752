// Metadata zips: uploaded for deployments, or produced by retrievals. The bytes live in the content-addressed
// artifact directory (shared by API and workers); Postgres keeps what they are and where they came from.
import { stat } from 'node:fs/promises';
import {
  artifactPath,
  listArtifactFiles,
  looksLikeZip,
  removeFileIfOlder,
  storeArtifactBytes,
  type StoredFile,
} from '../../artifacts/artifact-files.js';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Artifact } from '../../generated/prisma/client.js';
import type { TaskType } from '../../generated/prisma/enums.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { NotFoundError, ValidationFailedError } from '../errors.js';
import { rawId } from '../ids.js';

/** What a prune removed: artifact records, files, and files it could not remove (with the first reason). */
export interface PruneResult {
  artifacts: number;
  files: number;
  failures: number;
  firstFailure?: string;
}

/** A use within this long is not written again: bursts of tasks naming one artifact do not queue on its row. */
const useResolutionMs = 3_600_000;

/**
 * Marks an artifact (its global id or raw UUID) used now, so its retention starts again; returns its raw UUID, or
 * null if there is no such artifact. A prune that deletes it first makes this null; a prune after it sees it used.
 * An artifact used within the last hour is only looked up: no prune deletes it either, as retention is at least a
 * day. (The look-up is a statement of its own: it must see a concurrent prune's deletion, which the UPDATE waited
 * for.)
 */
export async function markArtifactUsed(prisma: PrismaClient, value: string): Promise<string | null> {
  const id = rawId(value, 'Artifact');
  if (!id) return null;
  const now = new Date();
  const marked = await prisma.$executeRaw`
    UPDATE "Artifact" SET "lastUsedAt" = ${now}::timestamp(3)
    WHERE id = ${id}::uuid AND "lastUsedAt" < ${new Date(now.getTime() - useResolutionMs)}::timestamp(3)`;
  return marked > 0 || (await prisma.artifact.count({ where: { id } })) > 0 ? id : null;
}

/** Task types whose params name an artifact (`params.artifactId`). */
const artifactTaskTypes: TaskType[] = ['DEPLOY', 'VALIDATE'];

/** The artifact a task's params name (`params.artifactId` of a DEPLOY or VALIDATE), as given; undefined if none. */
export function artifactParam(type: string, params: unknown): string | undefined {
  const id = (params as { artifactId?: unknown } | null)?.artifactId;
  return artifactTaskTypes.includes(type as TaskType) && typeof id === 'string' ? id : undefined;
}

/**
 * For a task type whose params name an artifact (a task being submitted, a schedule or a webhook rule being
 * created): checks the artifact exists and marks it used (markArtifactUsed), and returns the params with its raw
 * UUID. No such artifact is a ValidationError at `path`.artifactId.
 */
export async function useArtifactParam(prisma: PrismaClient, type: string, params: Record<string, unknown>, path: string[]): Promise<Record<string, unknown>> {
  const given = artifactParam(type, params);
  if (given === undefined) return params;
  const id = await markArtifactUsed(prisma, given);
  if (!id) throw ValidationFailedError.single([...path, 'artifactId'], 'is not the id of an uploaded or retrieved artifact');
  return { ...params, artifactId: id };
}

/** Age past which a temporary file in the artifact directory is an interrupted write's (pruneFiles). */
const temporaryFileMaxAgeMs = 3_600_000;

export class ArtifactService {
  constructor(
    private readonly prisma: PrismaClient,
    readonly dir: string,
    private readonly maxUploadBytes: number,
  ) {}

  async upload(actor: Principal, fileName: string, bytes: Uint8Array): Promise<Artifact> {
    if (bytes.byteLength === 0) throw ValidationFailedError.single(['file'], 'is empty');
    if (bytes.byteLength > this.maxUploadBytes) throw ValidationFailedError.single(['file'], `is larger than ${this.maxUploadBytes} bytes`);
    if (!looksLikeZip(bytes)) throw ValidationFailedError.single(['file'], 'must be a zip archive of metadata (with package.xml)');
    const stored = await storeArtifactBytes(this.dir, bytes);
    const artifact = await this.record(stored, { fileName: safeName(fileName), source: 'UPLOAD', createdBy: actorLabel(actor) });
    // A prune that found no record of these bytes may have removed their file just as it was written: put it back.
    if (!(await stat(this.pathOf(artifact)).catch(() => null))) await storeArtifactBytes(this.dir, bytes);
    return artifact;
  }

  /** Records a zip a retrieval wrote into the store. */
  recordRetrieved(stored: StoredFile, taskId: string, fileName: string): Promise<Artifact> {
    return this.record(stored, { fileName: safeName(fileName), source: 'RETRIEVE', createdBy: `task:${taskId}`, taskId });
  }

  async require(id: string): Promise<Artifact> {
    const artifact = await this.prisma.artifact.findUnique({ where: { id } });
    if (!artifact) throw new NotFoundError('ARTIFACT_NOT_FOUND', 'No artifact with that id');
    return artifact;
  }

  async find<T extends Omit<Prisma.ArtifactFindUniqueArgs, 'where'>>(id: string, query?: T) {
    return this.prisma.artifact.findUnique({ ...(query as T), where: { id } });
  }

  async list<T extends Omit<Prisma.ArtifactFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.artifact.findMany({ ...query, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  }

  count(): Promise<number> {
    return this.prisma.artifact.count();
  }

  /**
   * Deletes the artifacts last used (created, or named: markArtifactUsed) before `cutoff` that nothing may still use:
   * none named by a task that has yet to run or is running, by a schedule, or by a webhook rule. A finished task
   * keeps no artifact alive (retrying it later fails with ARTIFACT_NOT_FOUND), and a RETRIEVE task's result then
   * names an artifact that is gone. Files are content-addressed: a file goes when no artifact record is left for
   * its bytes, and only if it was written before `cutoff` too (an upload of the same bytes touches it before it
   * records them). Safe to run from several workers at once.
   */
  async prune(cutoff: Date): Promise<PruneResult> {
    const [schedules, rules] = await Promise.all([
      this.prisma.schedule.findMany({ where: { type: { in: artifactTaskTypes } }, select: { type: true, input: true } }),
      this.prisma.webhookRule.findMany({ where: { taskType: { in: artifactTaskTypes } }, select: { taskType: true, params: true } }),
    ]);
    // Rules created before artifacts were checked keep the id as it was given: a global id or a raw UUID.
    const referenced = [...schedules.map((s) => artifactParam(s.type, s.input)), ...rules.map((r) => artifactParam(r.taskType, r.params))].flatMap((id) => {
      const raw = id === undefined ? null : rawId(id, 'Artifact');
      return raw ? [raw] : [];
    });
    const deleted = await this.prisma.$queryRaw<Array<{ sha256: string }>>`
      DELETE FROM "Artifact" a
      WHERE a."lastUsedAt" < ${cutoff}::timestamp(3)
        AND a.id <> ALL(${referenced}::uuid[])
        AND NOT EXISTS (
          SELECT 1 FROM "Task" t
          WHERE t.status IN ('SCHEDULED', 'QUEUED', 'RUNNING') AND t.input->>'artifactId' = a.id::text)
      RETURNING a.sha256`;
    const removed = await this.removeUnrecorded([...new Set(deleted.map((row) => row.sha256))], cutoff);
    return { artifacts: deleted.length, ...removed };
  }

  /**
   * Removes every file written before `cutoff` that no artifact record names, and temporary files interrupted
   * writes left: what prune() does not reach (an upload whose record was never written, a retrieval whose task
   * failed after its child wrote the zip, a prune stopped between its statement and its files). It reads the
   * whole directory, so workers run it seldom.
   */
  async pruneFiles(cutoff: Date): Promise<Omit<PruneResult, 'artifacts'>> {
    const { digests, temporary } = await listArtifactFiles(this.dir);
    const removed = await this.removeUnrecorded(digests, cutoff);
    return this.removeAbandoned(temporary, removed);
  }

  /** Removes only the temporary files interrupted writes left (with retention off, nothing else is ever removed). */
  async pruneAbandonedWrites(): Promise<Omit<PruneResult, 'artifacts'>> {
    const { temporary } = await listArtifactFiles(this.dir);
    return this.removeAbandoned(temporary, { files: 0, failures: 0 });
  }

  /** A write takes seconds: a temporary file an hour old belongs to one that was interrupted (a child killed). */
  private async removeAbandoned(temporary: string[], removed: Omit<PruneResult, 'artifacts'>): Promise<Omit<PruneResult, 'artifacts'>> {
    const abandoned = new Date(Date.now() - temporaryFileMaxAgeMs);
    for (const file of temporary) await countRemoval(removed, () => removeFileIfOlder(file, abandoned));
    return removed;
  }

  /** Removes the files of `digests` that no record names and that were written before `cutoff`. */
  private async removeUnrecorded(digests: string[], cutoff: Date): Promise<Omit<PruneResult, 'artifacts'>> {
    const result: Omit<PruneResult, 'artifacts'> = { files: 0, failures: 0 };
    for (let start = 0; start < digests.length; start += 1000) {
      const chunk = digests.slice(start, start + 1000);
      const recorded = await this.prisma.$queryRaw<Array<{ sha256: string }>>`
        SELECT DISTINCT sha256 FROM "Artifact" WHERE sha256 = ANY(${chunk}::text[])`;
      const kept = new Set(recorded.map((row) => row.sha256));
      for (const digest of chunk) {
        if (!kept.has(digest)) await countRemoval(result, () => removeFileIfOlder(artifactPath(this.dir, digest), cutoff));
      }
    }
    return result;
  }

  pathOf(artifact: Artifact): string {
    return artifactPath(this.dir, artifact.sha256);
  }

  private record(stored: StoredFile, data: Omit<Prisma.ArtifactUncheckedCreateInput, 'sha256' | 'sizeBytes'>): Promise<Artifact> {
    return this.prisma.artifact.create({ data: { ...data, sha256: stored.sha256, sizeBytes: stored.sizeBytes } });
  }
}

/** Runs one removal, counting it, or its failure (e.g. EACCES: the next prune tries again). */
async function countRemoval(result: Omit<PruneResult, 'artifacts'>, remove: () => Promise<boolean>): Promise<void> {
  try {
    if (await remove()) result.files += 1;
  } catch (error) {
    result.failures += 1;
    result.firstFailure ??= (error as Error).message;
  }
}

function safeName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? 'metadata.zip';
  return base.replace(/[^\w.-]+/g, '_').slice(0, 200) || 'metadata.zip';
}
