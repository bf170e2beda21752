// POST /webhooks/<kind>/<sourceId>: verify, de-duplicate, persist, enqueue, answer. Every answer is JSON
// with a code. A request that does not verify stores nothing but a counter in Redis, so forged traffic
// cannot fill the database.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { acceptedSecrets } from '../domain/webhooks/webhook-source-cache.js';
import type { WebhookService } from '../domain/webhooks/webhook-service.js';
import type { WebhookKind } from '../generated/prisma/enums.js';
import { normalise } from './events.js';
import { storableJson } from '../domain/storable-text.js';
import { BodyTooLarge, readBody } from '../server/read-body.js';
import { verifyGitHub, verifyGitLab, verifyTimestampedWithAny } from './signatures.js';

const kinds: Record<string, WebhookKind> = { github: 'GITHUB', gitlab: 'GITLAB', salesforce: 'SALESFORCE', ci: 'CI' };

export interface WebhookRouteDeps {
  webhooks: WebhookService;
  redis: Redis;
  prefix: string;
  maxBodyBytes: number;
  logger: Logger;
}

type Reply = (res: ServerResponse, status: number, body: unknown) => void;

export function rejectedCounterKey(prefix: string): string {
  return `${prefix}:webhooks:rejected`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function handleWebhook(req: IncomingMessage, res: ServerResponse, path: string, deps: WebhookRouteDeps, reply: Reply): Promise<void> {
  const error = (status: number, code: string, message: string) => reply(res, status, { error: { code, message } });
  const [, , kindName, sourceId, extra] = path.split('/');
  const kind = kindName ? kinds[kindName] : undefined;
  if (!kind || !sourceId || extra !== undefined) return error(404, 'NOT_FOUND', 'Webhook URLs look like /webhooks/<github|gitlab|salesforce|ci>/<sourceId>');
  if (req.method !== 'POST') return error(405, 'METHOD_NOT_ALLOWED', 'Webhooks are POSTed');
  const contentType = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') return error(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the payload as application/json');
  const declared = Number(header(req, 'content-length') ?? 0);
  if (declared > deps.maxBodyBytes) return error(413, 'PAYLOAD_TOO_LARGE', `Payloads are limited to ${deps.maxBodyBytes} bytes`);

  let body: Buffer;
  try {
    body = await readBody(req, deps.maxBodyBytes);
  } catch (failure) {
    if (failure instanceof BodyTooLarge) return error(413, 'PAYLOAD_TOO_LARGE', `Payloads are limited to ${deps.maxBodyBytes} bytes`);
    throw failure;
  }

  // One field per known source, and one for all unknown ids: ids from the URL are the sender's choice, so a
  // field per unknown id would let forged traffic grow the hash without bound.
  const reject = async (reason: 'UNKNOWN_SOURCE' | 'BAD_SIGNATURE', knownId?: string) => {
    await deps.redis.hincrby(rejectedCounterKey(deps.prefix), `${knownId ?? 'unknown'}:${reason}`, 1).catch(() => undefined);
    error(401, 'INVALID_SIGNATURE', 'Unknown webhook source or wrong signature');
  };
  const found = await deps.webhooks.sourceForDelivery(kind, sourceId);
  if (!found) return reject('UNKNOWN_SOURCE');
  const { source } = found;
  const secrets = acceptedSecrets(found);
  // The verified signature: a copy of the request under another delivery id is the same delivery (its id is not
  // signed); WebhookService records it with the delivery. GitLab sends its secret itself, not a signature.
  let signature: string | undefined;
  if (kind === 'GITHUB') {
    const githubSignature = header(req, 'x-hub-signature-256');
    if (!secrets.some((secret) => verifyGitHub(secret, body, githubSignature))) return reject('BAD_SIGNATURE', source.id);
    signature = githubSignature!.slice('sha256='.length);
  }
  if (kind === 'GITLAB' && !secrets.some((secret) => verifyGitLab(secret, header(req, 'x-gitlab-token')))) return reject('BAD_SIGNATURE', source.id);
  if (kind === 'SALESFORCE' || kind === 'CI') {
    const verdict = verifyTimestampedWithAny(secrets, body, header(req, 'x-switchyard-signature'));
    if (!verdict.ok) {
      await deps.redis.hincrby(rejectedCounterKey(deps.prefix), `${source.id}:${verdict.reason}`, 1).catch(() => undefined);
      return error(401, verdict.reason === 'STALE_TIMESTAMP' ? 'STALE_TIMESTAMP' : 'INVALID_SIGNATURE', verdict.reason === 'STALE_TIMESTAMP' ? 'The signature timestamp is older than 5 minutes or in the future' : 'Wrong or missing signature');
    }
    signature = verdict.signature;
  }

  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    return error(400, 'MALFORMED_JSON', 'The body is not valid JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return error(400, 'MALFORMED_JSON', 'The body must be a JSON object');

  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
  if (kind === 'GITHUB' && headers['x-github-event'] === 'ping') return reply(res, 200, { status: 'PONG', zen: (payload as { zen?: string }).zen ?? null });

  // Postgres can store neither NUL nor a lone surrogate, which a commit message may well hold: they are recorded as
  // U+FFFD, in the stored payload and in all that is taken from it. The delivery is still known by the signed body.
  const storable = storableJson(payload) as Record<string, unknown>;
  const delivery = normalise(kind, headers, storable, body);
  if (signature) delivery.signature = signature;
  // Redis being down refuses nothing: the delivery is recorded and its tasks wait, QUEUED (queuedLater below).
  const outcome = await deps.webhooks.accept(found, delivery, storable === payload ? body : Buffer.from(JSON.stringify(storable)));
  if (outcome.queuedLater) {
    deps.logger.warn({ sourceId: source.id, deliveryId: outcome.delivery.id, taskIds: outcome.delivery.taskIds }, 'webhook delivery recorded; its tasks wait for the task queue (Redis), and a worker queues them once it is back');
  }
  reply(res, 200, {
    deliveryId: outcome.delivery.id,
    duplicate: outcome.duplicate,
    status: outcome.delivery.status,
    event: outcome.delivery.event,
    taskIds: outcome.delivery.taskIds,
    ...(outcome.delivery.error ? { error: outcome.delivery.error } : {}),
    ...(outcome.queuedLater ? { queuedLater: true } : {}),
  });
}
