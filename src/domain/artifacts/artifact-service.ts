// Metadata zips: uploaded for deployments, or produced by retrievals. The bytes live in the content-addressed
// artifact directory (shared by API and workers); Postgres keeps what they are and where they came from.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { artifactPath, looksLikeZip, storeArtifactBytes, type StoredFile } from '../../artifacts/artifact-files.js';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Artifact } from '../../generated/prisma/client.js';
import { actorLabel, type Principal } from '../auth/principal.js';
import { NotFoundError, ValidationFailedError } from '../errors.js';

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
    return this.record(stored, { fileName: safeName(fileName), source: 'UPLOAD', createdBy: actorLabel(actor) });
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
