// What a verified delivery is about, in one shape for every sender: an event name, the repository and the
// branch/tag it concerns, and the sender's delivery id. Field names follow GitHub's and GitLab's documented
// webhook payloads (push, pull_request, ping; Push Hook, Tag Push Hook, Merge Request Hook).
import { createHash } from 'node:crypto';
import type { WebhookKind } from '../generated/prisma/enums.js';

export interface NormalisedDelivery {
  event: string;
  repository: string | null;
  ref: string | null;
  deliveryKey: string;
  /** CI callbacks may report on an existing task. */
  taskId?: string;
  status?: string;
  message?: string;
  url?: string;
}

type Headers = Record<string, string | undefined>;
type Json = Record<string, any>;

// Payload fields are the sender's JSON: anything that is not a non-empty string (an object where a name belongs)
// counts as absent, rather than being recorded as "[object Object]".
const str = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value.slice(0, 500) : undefined);
const idOf = (value: unknown): string | undefined => (typeof value === 'number' && Number.isFinite(value) ? String(value) : str(value));

function stripRef(value: unknown): { ref: string | null; isTag: boolean } {
  const ref = str(value);
  if (ref === undefined) return { ref: null, isTag: false };
  if (ref.startsWith('refs/tags/')) return { ref: ref.slice('refs/tags/'.length), isTag: true };
  if (ref.startsWith('refs/heads/')) return { ref: ref.slice('refs/heads/'.length), isTag: false };
  return { ref, isTag: false };
}

const fallbackKey = (body: Buffer) => `sha256:${createHash('sha256').update(body).digest('hex')}`;

export function normalise(kind: WebhookKind, headers: Headers, payload: Json, body: Buffer): NormalisedDelivery {
  switch (kind) {
    case 'GITHUB': {
      const name = headers['x-github-event'] ?? 'unknown';
      const key = headers['x-github-delivery'] ?? fallbackKey(body);
      const repository = str(payload.repository?.full_name) ?? null;
      if (name === 'push') {
        const { ref, isTag } = stripRef(payload.ref);
        return { event: isTag ? 'tag' : 'push', repository, ref, deliveryKey: key };
      }
      if (name === 'pull_request') {
        return { event: `pull_request.${str(payload.action) ?? 'unknown'}`, repository, ref: str(payload.pull_request?.base?.ref) ?? null, deliveryKey: key };
      }
      return { event: name, repository, ref: null, deliveryKey: key };
    }
    case 'GITLAB': {
      const name = headers['x-gitlab-event'] ?? str(payload.object_kind) ?? 'unknown';
      const key = headers['x-gitlab-event-uuid'] ?? headers['idempotency-key'] ?? fallbackKey(body);
      const repository = str(payload.project?.path_with_namespace) ?? null;
      if (name === 'Push Hook' || payload.object_kind === 'push') return { event: 'push', repository, ref: stripRef(payload.ref).ref, deliveryKey: key };
      if (name === 'Tag Push Hook' || payload.object_kind === 'tag_push') return { event: 'tag', repository, ref: stripRef(payload.ref).ref, deliveryKey: key };
      if (name === 'Merge Request Hook' || payload.object_kind === 'merge_request') {
        const attributes = payload.object_attributes ?? {};
        return { event: `merge_request.${str(attributes.action) ?? 'unknown'}`, repository, ref: str(attributes.target_branch) ?? null, deliveryKey: key };
      }
      return { event: name, repository, ref: null, deliveryKey: key };
    }
    case 'SALESFORCE':
      return {
        event: str(payload.event) ?? str(payload.eventName) ?? headers['x-switchyard-event'] ?? 'unknown',
        repository: null,
        ref: str(payload.ref) ?? null,
        deliveryKey: headers['x-switchyard-delivery'] ?? headers['idempotency-key'] ?? idOf(payload.replayId) ?? fallbackKey(body),
      };
    case 'CI':
      return {
        event: str(payload.status) ?? headers['x-switchyard-event'] ?? 'unknown',
        repository: str(payload.repository) ?? null,
        ref: str(payload.ref) ?? null,
        deliveryKey: headers['x-switchyard-delivery'] ?? headers['idempotency-key'] ?? fallbackKey(body),
        ...(str(payload.taskId) ? { taskId: str(payload.taskId)! } : {}),
        ...(str(payload.status) ? { status: str(payload.status)! } : {}),
        ...(str(payload.message) ? { message: str(payload.message)! } : {}),
        ...(str(payload.url) ? { url: str(payload.url)! } : {}),
      };
  }
}
