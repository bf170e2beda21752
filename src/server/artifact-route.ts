// GET /artifacts/<id>: downloads a metadata zip with the same bearer token as the API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { bearerToken } from '../context.js';
import { can } from '../domain/auth/permissions.js';
import { rawId } from '../domain/ids.js';
import type { Services } from '../services.js';

type Reply = (res: ServerResponse, status: number, body: unknown) => void;

export async function serveArtifact(req: IncomingMessage, res: ServerResponse, id: string, services: Services, reply: Reply): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    reply(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'Use GET' } });
    return;
  }
  const token = bearerToken(req.headers.authorization);
  const principal = token ? await services.tokens.authenticate(token) : null;
  if (!principal) {
    res.setHeader('www-authenticate', 'Bearer');
    reply(res, 401, { error: { code: 'UNAUTHENTICATED', message: 'Send Authorization: Bearer <token>' } });
    return;
  }
  if (!can(principal.role, 'read')) {
    reply(res, 403, { error: { code: 'FORBIDDEN', message: 'Your role may not read artifacts' } });
    return;
  }
  const decoded = decodePathSegment(id);
  const artifactId = decoded === null ? null : rawId(decoded, 'Artifact');
  const artifact = artifactId ? await services.artifacts.find(artifactId) : null;
  if (!artifact) {
    reply(res, 404, { error: { code: 'ARTIFACT_NOT_FOUND', message: 'No artifact with that id' } });
    return;
  }
  // Opened before the answer starts, and checked against the record: a file removed meanwhile, unreadable, or of
  // another size than the Content-Length promised would otherwise break the download after its 200.
  const file = await open(services.artifacts.pathOf(artifact)).catch(() => null);
  const size = file ? await file.stat().then((s) => s.size, () => null) : null;
  if (!file || size !== artifact.sizeBytes) {
    await file?.close();
    const message = file ? 'The artifact is recorded but its file in the artifact store is damaged (not the recorded size)' : 'The artifact is recorded but its file is missing from the artifact store';
    reply(res, 410, { error: { code: 'ARTIFACT_FILE_MISSING', message } });
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/zip',
    'content-length': String(artifact.sizeBytes),
    'content-disposition': `attachment; filename="${artifact.fileName}"`,
    'x-content-sha256': artifact.sha256,
    'cache-control': 'private, max-age=31536000, immutable',
  });
  if (req.method === 'HEAD') {
    await file.close();
    res.end();
    return;
  }
  await pipeline(file.createReadStream(), res).catch(() => res.destroy());
}

/**
 * The segment with its %-escapes decoded, or null when they are not percent-encoded UTF-8 (`%ZZ`, a cut-off
 * sequence): no artifact has such an id, so it is a 404 like any other unknown id, not a failed request.
 */
function decodePathSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch (error) {
    if (error instanceof URIError) return null;
    throw error;
  }
}
