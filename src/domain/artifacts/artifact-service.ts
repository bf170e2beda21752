// Metadata zips: uploaded for deployments, or produced by retrievals. The bytes live in the content-addressed
// artifact directory (shared by API and workers); Postgres keeps what they are and where they came from.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { stat } from 'node:fs/promises';
import { artifactPath, looksLikeZip, removeArtifactFile, storeArtifactBytes, type StoredFile } from '../../artifacts/artifact-files.js';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Artifact } from '../../generated/prisma/client.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { NotFoundError, ValidationFailedError } from '../errors.js';
import { rawId } from '../ids.js';

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
   * Deletes the artifacts created before `cutoff` that nothing may still use: none referenced by a task that
   * has yet to run or is running, by a schedule, or by a webhook rule. A finished task keeps no artifact alive
   * (retrying it later fails with ARTIFACT_NOT_FOUND), and a RETRIEVE task's result then names an artifact
   * that is gone. Files are content-addressed: a file goes when no artifact record is left for its bytes, and
   * only if it was written before `cutoff` too (an upload of the same bytes touches it before it records them).
   * Safe to run from several workers at once.
   */
  async prune(cutoff: Date): Promise<{ artifacts: number; files: number }> {
    const [schedules, rules] = await Promise.all([
      this.prisma.schedule.findMany({ select: { input: true } }),
      this.prisma.webhookRule.findMany({ select: { params: true } }),
    ]);
    // Rules keep params as they were given: a global id or a raw UUID.
    const referenced = [...schedules.map((s) => s.input), ...rules.map((r) => r.params)].flatMap((params) => {
      const id = (params as { artifactId?: unknown } | null)?.artifactId;
      const raw = typeof id === 'string' ? rawId(id, 'Artifact') : null;
      return raw ? [raw] : [];
    });
    const deleted = await this.prisma.$queryRaw<Array<{ sha256: string }>>`
      DELETE FROM "Artifact" a
      WHERE a."createdAt" < ${cutoff}::timestamp(3)
        AND a.id <> ALL(${referenced}::uuid[])
        AND NOT EXISTS (
          SELECT 1 FROM "Task" t
          WHERE t.status IN ('SCHEDULED', 'QUEUED', 'RUNNING') AND t.input->>'artifactId' = a.id::text)
      RETURNING a.sha256`;
    const digests = [...new Set(deleted.map((row) => row.sha256))];
    if (digests.length === 0) return { artifacts: 0, files: 0 };
    const kept = await this.prisma.$queryRaw<Array<{ sha256: string }>>`
      SELECT DISTINCT sha256 FROM "Artifact" WHERE sha256 = ANY(${digests}::text[])`;
    const keptDigests = new Set(kept.map((row) => row.sha256));
    let files = 0;
    for (const digest of digests) {
      if (!keptDigests.has(digest) && (await removeArtifactFile(this.dir, digest, cutoff))) files += 1;
    }
    return { artifacts: deleted.length, files };
  }

  pathOf(artifact: Artifact): string {
    return artifactPath(this.dir, artifact.sha256);
  }

  open(artifact: Artifact): Readable {
    return createReadStream(this.pathOf(artifact));
  }

  private record(stored: StoredFile, data: Omit<Prisma.ArtifactUncheckedCreateInput, 'sha256' | 'sizeBytes'>): Promise<Artifact> {
    return this.prisma.artifact.create({ data: { ...data, sha256: stored.sha256, sizeBytes: stored.sizeBytes } });
  }
}

function safeName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? 'metadata.zip';
  return base.replace(/[^\w.-]+/g, '_').slice(0, 200) || 'metadata.zip';
}
