// The content-addressed artifact directory: <dir>/<sha256[0:2]>/<sha256>.zip. Writing is atomic (temporary
// file, then rename), and the same bytes always land at the same path, so writers never conflict. Only
// Node built-ins: the per-task child process writes retrieved zips here itself.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface StoredFile {
  sha256: string;
  sizeBytes: number;
}

export function artifactPath(dir: string, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('not a sha256 digest');
  return path.join(dir, sha256.slice(0, 2), `${sha256}.zip`);
}

export async function storeArtifactBytes(dir: string, bytes: Uint8Array): Promise<StoredFile> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const target = artifactPath(dir, sha256);
  const existing = await stat(target).catch(() => null);
  if (existing?.size === bytes.byteLength) {
    // Written again now, as far as pruning is concerned: it removes only files older than its cutoff.
    const now = new Date();
    if (await utimes(target, now, now).then(() => true, () => false)) return { sha256, sizeBytes: bytes.byteLength };
  }
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, bytes, { mode: 0o640 });
    await rename(temporary, target);
  } catch (error) {
    // A full disk would otherwise keep the partial file until the sweep's cutoff, and stay full.
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  return { sha256, sizeBytes: bytes.byteLength };
}

const missing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Removes a file last written before `writtenBefore` (a file written since may be about to get a new record: see
 * ArtifactService.prune). True if it was removed; throws if it could not be.
 */
export async function removeFileIfOlder(file: string, writtenBefore: Date): Promise<boolean> {
  try {
    if ((await stat(file)).mtime >= writtenBefore) return false;
    await unlink(file);
    return true;
  } catch (error) {
    if (missing(error)) return false; // another worker removed it first
    throw error;
  }
}

/** Every stored file's digest, and the temporary files interrupted writes left behind (with their paths). */
export async function listArtifactFiles(dir: string): Promise<{ digests: string[]; temporary: string[] }> {
  const digests: string[] = [];
  const temporary: string[] = [];
  // No directory yet is an empty store; anything else (unreadable, unmounted) is an error for the caller to report.
  const shards = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    if (missing(error)) return [];
    throw error;
  });
  for (const shard of shards) {
    if (!shard.isDirectory() || !/^[0-9a-f]{2}$/.test(shard.name)) continue;
    for (const name of await readdir(path.join(dir, shard.name))) {
      const digest = /^([0-9a-f]{64})\.zip$/.exec(name)?.[1];
      if (digest) digests.push(digest);
      else if (/^[0-9a-f]{64}\.zip\.[0-9a-f]+\.tmp$/.test(name)) temporary.push(path.join(dir, shard.name, name));
    }
  }
  return { digests, temporary };
}

/** A zip starts with a local file header (PK\x03\x04) or, when empty, an end-of-central-directory record. */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}
