// The one place configuration is read. Every variable is validated together so a misconfigured deployment
// hears about all of its mistakes at once, then exits non-zero (see cli/main.ts).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { isAddressRange } from './net/address-ranges.js';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const postgresUrl = z
  .string()
  .refine((value) => /^postgres(ql)?:\/\//.test(value) && URL.canParse(value), {
    message: 'must be a postgresql:// URL',
  });

const redisUrl = z
  .string()
  .refine((value) => /^rediss?:\/\//.test(value) && URL.canParse(value), { message: 'must be a redis:// or rediss:// URL' });

const httpUrl = z
  .string()
  .refine((value) => /^https?:\/\//.test(value) && URL.canParse(value), { message: 'must be an http:// or https:// URL' });

/** A Vault path such as "secret" or "teams/switchyard": plain segments joined by "/". */
const vaultPath = z
  .string()
  .regex(/^\/*[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/*$/, 'letters, digits, . _ - and / only')
  .refine((value) => !value.split('/').some((segment) => segment === '.' || segment === '..'), {
    message: 'must not contain . or .. segments',
  });

/** Comma-separated IP addresses and CIDR ranges ("127.0.0.1,172.16.0.0/12,::1"), as a list; empty allowed. */
const addressRangeList = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
  .superRefine((entries, ctx) => {
    const invalid = entries.filter((entry) => !isAddressRange(entry));
    if (invalid.length > 0) ctx.addIssue({ code: 'custom', message: `not IP addresses or CIDR ranges: ${invalid.join(', ')}` });
  });

/** Node's longest timer, in ms: a longer one fires after 1 ms (with only a warning), so "wait for ever" would be "at once". */
export const maxTimerMs = 2_147_483_647;

/** A duration in ms that becomes a timer: from `min` up to `max` (Node's longest timer, or less for one used in multiples). */
function milliseconds(min: number, fallback: number, max = maxTimerMs) {
  return z.coerce.number().int().min(min).max(max, `must be at most ${max} (Node's longest timer is ${maxTimerMs} ms, about 24.8 days)`).default(fallback);
}

/** 32 bytes as 64 hex characters or as base64 (44 characters). */
const secretKey = z.string().refine((value) => decodeSecretKey(value) !== null, {
  message: 'must be 32 bytes, as 64 hex characters or base64',
});

export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    DATABASE_URL: postgresUrl.default('postgresql://postgres@127.0.0.1:5432/switchyard'),
    REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: z.enum(logLevels).default('info'),
    SWITCHYARD_SECRET_KEY: secretKey.optional(),
    SWITCHYARD_KEY_FILE: z.string().min(1).default('.switchyard/secret-key'),
    SWITCHYARD_QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only')
      .default('switchyard'),
    SWITCHYARD_GRAPHIQL: booleanString.default(true),
    SWITCHYARD_SHUTDOWN_TIMEOUT_MS: milliseconds(0, 60_000),
    SWITCHYARD_RUN_AS: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*(?::[a-z_][a-z0-9_-]*)?$|^\d+(?::\d+)?$/i, 'a user, or user:group (names or numeric ids)')
      .optional(),
    // Queue an ORG_CHECK when an org is registered or its credentials are rotated.
    SWITCHYARD_CHECK_ORGS: booleanString.default(true),
    // Metadata zips (uploads, retrievals): a directory shared by the API and every worker.
    SWITCHYARD_ARTIFACT_DIR: z.string().min(1).default('.switchyard/artifacts'),
    // Artifact sizes are 32-bit integers in Postgres (Artifact.sizeBytes).
    SWITCHYARD_MAX_UPLOAD_BYTES: z.coerce.number().int().min(1024).max(2 ** 31 - 1).default(100 * 1024 * 1024),
    SWITCHYARD_MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
    // Workers delete artifacts not used for this many days unless a waiting or running task, a schedule or a
    // webhook rule names them; 0 keeps every artifact.
    SWITCHYARD_ARTIFACT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
    // Inbound webhooks: largest accepted body, and how much of a payload the delivery log keeps.
    SWITCHYARD_WEBHOOK_MAX_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
    SWITCHYARD_WEBHOOK_DELIVERY_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
    SWITCHYARD_WEBHOOK_STORED_PAYLOAD_BYTES: z.coerce.number().int().min(0).default(64 * 1024),
    // Outbound notifications never reach loopback, private, link-local (cloud metadata) and other special-purpose
    // addresses, unless they are in these ranges: a subscriber URL is user input (net/outbound-address-policy.ts).
    SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS: addressRangeList.default([]),
    // GraphQL hardening: per-operation limits; introspection defaults to off in production.
    SWITCHYARD_GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(2).default(15),
    SWITCHYARD_GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(30),
    SWITCHYARD_GRAPHQL_MAX_FIELDS: z.coerce.number().int().min(10).default(1000),
    SWITCHYARD_GRAPHQL_MAX_NODES: z.coerce.number().int().min(100).default(50_000),
    SWITCHYARD_GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(5000),
    // Bracket nesting of a document and of its variables; graphql-js overflows its stack a few thousand deep.
    SWITCHYARD_GRAPHQL_MAX_NESTING: z.coerce.number().int().min(10).max(1000).default(100),
    SWITCHYARD_INTROSPECTION: booleanString.optional(),
    // Rate limits (Redis sliding windows shared by every replica), per minute; 0 turns one off.
    SWITCHYARD_RATE_LIMIT_API: z.coerce.number().int().min(0).default(600),
    SWITCHYARD_RATE_LIMIT_WEBHOOKS: z.coerce.number().int().min(0).default(1200),
    SWITCHYARD_WS_MAX_CONNECTIONS_PER_TOKEN: z.coerce.number().int().min(1).default(20),
    /** Peers (addresses or CIDR ranges) whose X-Forwarded-For is believed: Caddy's. */
    SWITCHYARD_TRUSTED_PROXIES: addressRangeList.default(['127.0.0.1', '::1']),
    // Live subscriptions (graphql-ws): per-connection limits.
    SWITCHYARD_WS_MAX_SUBSCRIPTIONS: z.coerce.number().int().min(1).max(1000).default(20),
    SWITCHYARD_WS_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).default(4 * 1024 * 1024),
    // Workers (src/workers): which queues and how many tasks at once, unless `switchyard worker` flags say.
    SWITCHYARD_WORKER_QUEUES: z.string().default('critical,normal,batch'),
    SWITCHYARD_WORKER_CONCURRENCY: z.string().default('critical=2,normal=2,batch=1'),
    SWITCHYARD_JOB_LOCK_MS: milliseconds(1000, 30_000),
    // Abort → SIGTERM after this → SIGKILL after twice this. Above the 20 s a cancelled deployment waits for Salesforce.
    SWITCHYARD_KILL_GRACE_MS: milliseconds(0, 30_000),
    SWITCHYARD_SPARE_CHILD: booleanString.default(true),
    // Task children start from a V8 snapshot with jsforce loaded (src/workers/child-snapshot/), kept in this directory.
    SWITCHYARD_CHILD_SNAPSHOT: booleanString.default(true),
    SWITCHYARD_CHILD_SNAPSHOT_DIR: z.string().min(1).optional(),
    // Waited for in multiples (up to 3 beats, the key's expiry).
    SWITCHYARD_HEARTBEAT_MS: milliseconds(100, 5000, Math.floor(maxTimerMs / 3)),
    SWITCHYARD_RECONCILE_INTERVAL_MS: milliseconds(1000, 60_000),
    SWITCHYARD_SCHEDULE_MIN_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
    SWITCHYARD_CANCEL_POLL_MS: milliseconds(100, 2000),
    SWITCHYARD_ORG_LOCK_LEASE_MS: milliseconds(1000, 30_000),
    SWITCHYARD_ORG_LOCK_POLL_MS: milliseconds(100, 2000),
    // HashiCorp Vault as the secret store (src/secrets/create-secret-store.ts): used when VAULT_ADDR is set,
    // with either VAULT_TOKEN or AppRole (VAULT_ROLE_ID + VAULT_SECRET_ID).
    VAULT_ADDR: httpUrl.optional(),
    VAULT_TOKEN: z.string().min(1).optional(),
    VAULT_ROLE_ID: z.string().min(1).optional(),
    VAULT_SECRET_ID: z.string().min(1).optional(),
    VAULT_NAMESPACE: z.string().min(1).optional(),
    VAULT_KV_MOUNT: vaultPath.default('secret'),
    VAULT_PATH_PREFIX: vaultPath.default('switchyard'),
  })
  .superRefine(
    (env, ctx) => {
      if (env.NODE_ENV === 'production' && !env.SWITCHYARD_SECRET_KEY) {
        ctx.addIssue({
          code: 'custom',
          path: ['SWITCHYARD_SECRET_KEY'],
          message: 'is required when NODE_ENV=production (generate one with `openssl rand -hex 32`)',
        });
      }
    },
    // Run even when other variables are invalid, so the missing key is reported with them (zod skips
    // refinements after failed fields by default). The input is always an object (see loadEnv).
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  )
  .superRefine(
    (env, ctx) => {
      // The shutdown deadline (cli/server-command.ts) is a timer too: the drain, the stop request's two graces, 5 s.
      const { SWITCHYARD_SHUTDOWN_TIMEOUT_MS: drain, SWITCHYARD_KILL_GRACE_MS: grace } = env;
      // (Either one invalid by itself is reported as such.)
      const valid = (value: unknown) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= maxTimerMs;
      if (valid(drain) && valid(grace) && drain + 2 * grace + 5000 > maxTimerMs) {
        ctx.addIssue({
          code: 'custom',
          path: ['SWITCHYARD_SHUTDOWN_TIMEOUT_MS'],
          message: `plus 2 × SWITCHYARD_KILL_GRACE_MS plus 5000 must be at most ${maxTimerMs} (Node's longest timer)`,
        });
      }
    },
    // Like the checks below: also runs when other variables are invalid, so it is reported with them.
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  )
  .superRefine(
    (env, ctx) => {
      // With VAULT_ADDR set, Vault is the secret store and needs exactly one way to authenticate.
      if (!env.VAULT_ADDR) return;
      const token = Boolean(env.VAULT_TOKEN);
      const roleId = Boolean(env.VAULT_ROLE_ID);
      const secretId = Boolean(env.VAULT_SECRET_ID);
      const issue = (variable: string, message: string) => ctx.addIssue({ code: 'custom', path: [variable], message });
      if (token && (roleId || secretId)) {
        issue('VAULT_TOKEN', 'cannot be combined with VAULT_ROLE_ID/VAULT_SECRET_ID: choose token or AppRole authentication');
      } else if (!token && !roleId && !secretId) {
        issue('VAULT_TOKEN', 'is required when VAULT_ADDR is set (or set both VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole)');
      } else if (roleId && !secretId) {
        issue('VAULT_SECRET_ID', 'is required with VAULT_ROLE_ID (AppRole authentication)');
      } else if (secretId && !roleId) {
        issue('VAULT_ROLE_ID', 'is required with VAULT_SECRET_ID (AppRole authentication)');
      }
    },
    // Like the check above: also runs when other variables are invalid.
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
  );

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvError';
  }
}

/**
 * Variables holding secrets that may instead be read from the file `<NAME>_FILE` names (Docker, Compose and
 * Kubernetes mount secrets as files): a value in the environment shows in `docker inspect`, in the output of
 * `docker-compose config`, and to whoever can read the process's environment.
 */
export const fileSecretVariables = ['DATABASE_URL', 'REDIS_URL', 'SWITCHYARD_SECRET_KEY', 'VAULT_TOKEN', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID'] as const;

/** The values of the `<NAME>_FILE` secrets that are set (one trailing line break dropped), and what was wrong. */
function readFileSecrets(source: NodeJS.ProcessEnv): { values: Record<string, string>; problems: string[] } {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  for (const name of fileSecretVariables) {
    const file = source[`${name}_FILE`];
    if (!file) continue;
    if (source[name]) {
      problems.push(`${name}_FILE cannot be combined with ${name}: set one of them`);
      continue;
    }
    try {
      const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      // Not "unset": that would fall back to a default (a local database, a generated development key).
      if (value === '') problems.push(`${name}_FILE names an empty file: ${file}`);
      else values[name] = value;
    } catch (error) {
      // The path, not the content: the file holds a secret.
      problems.push(`${name}_FILE could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'}): ${file}`);
    }
  }
  return { values, problems };
}

/** Parses the environment; throws EnvError listing every invalid variable. Empty strings count as unset. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const files = readFileSecrets(source);
  const present = Object.fromEntries(
    Object.entries({ ...source, ...files.values }).filter(([key, value]) => key in envSchema.shape && value !== undefined && value !== ''),
  );
  const parsed = envSchema.safeParse(present);
  if (parsed.success && files.problems.length === 0) return parsed.data;
  throw new EnvError([
    ...files.problems,
    ...(parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'} ${issue.message}`)),
  ]);
}

export function decodeSecretKey(value: string): Buffer | null {
  const trimmed = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const key = Buffer.from(trimmed, 'base64');
    return key.length === 32 ? key : null;
  }
  return null;
}
