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
  /** The verified signature it came with (hex), when its source signs: a copy under another delivery id is the same delivery. */
  signature?: string;
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

/**
 * A header's value, or undefined when it is missing or blank: a sender that sends an empty delivery id (a CI
 * variable that was not set) must not have every later delivery taken for a duplicate of the first.
 */
const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name]?.trim();
  return value ? value : undefined;
};

/** A branch or tag push that deleted it: `after` is the all-zero object id (GitHub also says `deleted: true`). */
const deletes = (payload: Json): boolean => payload.deleted === true || /^0+$/.test(str(payload.after) ?? '');

export function normalise(kind: WebhookKind, headers: Headers, payload: Json, body: Buffer): NormalisedDelivery {
  switch (kind) {
    case 'GITHUB': {
      const name = header(headers, 'x-github-event') ?? 'unknown';
      const key = header(headers, 'x-github-delivery') ?? fallbackKey(body);
      const repository = str(payload.repository?.full_name) ?? null;
      if (name === 'push') {
        const { ref, isTag } = stripRef(payload.ref);
        return { event: `${isTag ? 'tag' : 'push'}${deletes(payload) ? '.deleted' : ''}`, repository, ref, deliveryKey: key };
      }
      if (name === 'pull_request') {
        // GitHub reports a merge as `closed` with `merged: true`; a rule for merges must not fire when a pull
        // request is closed without merging.
        const action = payload.action === 'closed' && payload.pull_request?.merged === true ? 'merged' : (str(payload.action) ?? 'unknown');
        return { event: `pull_request.${action}`, repository, ref: str(payload.pull_request?.base?.ref) ?? null, deliveryKey: key };
      }
      return { event: name, repository, ref: null, deliveryKey: key };
    }
    case 'GITLAB': {
      const name = header(headers, 'x-gitlab-event') ?? str(payload.object_kind) ?? 'unknown';
      // Idempotency-Key is the one GitLab keeps when it sends a delivery again (automatically or "Resend
      // request"); X-Gitlab-Event-UUID is new on every request, and older GitLab versions send only that one.
      const key = header(headers, 'idempotency-key') ?? header(headers, 'x-gitlab-event-uuid') ?? fallbackKey(body);
      const repository = str(payload.project?.path_with_namespace) ?? null;
      const deleted = deletes(payload) ? '.deleted' : '';
      if (name === 'Push Hook' || payload.object_kind === 'push') return { event: `push${deleted}`, repository, ref: stripRef(payload.ref).ref, deliveryKey: key };
      if (name === 'Tag Push Hook' || payload.object_kind === 'tag_push') return { event: `tag${deleted}`, repository, ref: stripRef(payload.ref).ref, deliveryKey: key };
      if (name === 'Merge Request Hook' || payload.object_kind === 'merge_request') {
        const attributes = payload.object_attributes ?? {};
        return { event: `merge_request.${str(attributes.action) ?? 'unknown'}`, repository, ref: str(attributes.target_branch) ?? null, deliveryKey: key };
      }
      return { event: name, repository, ref: null, deliveryKey: key };
    }
    case 'SALESFORCE':
      return {
        event: str(payload.event) ?? str(payload.eventName) ?? header(headers, 'x-switchyard-event') ?? 'unknown',
        repository: null,
        ref: str(payload.ref) ?? null,
        deliveryKey: header(headers, 'x-switchyard-delivery') ?? header(headers, 'idempotency-key') ?? idOf(payload.replayId) ?? fallbackKey(body),
      };
    case 'CI':
      return {
        event: str(payload.status) ?? header(headers, 'x-switchyard-event') ?? 'unknown',
        repository: str(payload.repository) ?? null,
        ref: str(payload.ref) ?? null,
        deliveryKey: header(headers, 'x-switchyard-delivery') ?? header(headers, 'idempotency-key') ?? fallbackKey(body),
        ...(str(payload.taskId) ? { taskId: str(payload.taskId)! } : {}),
        ...(str(payload.status) ? { status: str(payload.status)! } : {}),
        ...(str(payload.message) ? { message: str(payload.message)! } : {}),
        ...(str(payload.url) ? { url: str(payload.url)! } : {}),
      };
  }
}
