// A benchmark run's throw-away places (Postgres schema, Redis key prefix, artifact directory), removing them at the
// end, and the Switchyard environment that points a process at them.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteKeys, dropSchema } from './cleanup.js';
import { baseDatabaseUrl, redisUrl } from './env.js';

/** A run's throw-away places, named after the benchmark and a random suffix, so runs never share state. */
export interface Scratch {
  /** Postgres schema `bench_<name>_<random>`, in the database of BENCH_DATABASE_URL. */
  schema: string;
  /** Redis key prefix `sybench-<name>-<random>` (the run's SWITCHYARD_QUEUE_PREFIX). */
  prefix: string;
  /** BENCH_DATABASE_URL with `?schema=<schema>`. */
  databaseUrl: string;
  /** A new directory `sybench-<name>-<random>-…` in the temp directory (the run's SWITCHYARD_ARTIFACT_DIR). */
  artifactDir: string;
  /**
   * Drops the schema, deletes the keys and the directory. A failure is logged, not thrown, so the rest is still
   * removed and the run's own error (if any) is the one reported.
   */
  remove(): Promise<void>;
}

/** Names the run's schema, key prefix and artifact directory (creating the directory); `scanCount`: see deleteKeys. */
export function createScratch(name: string, scanCount?: number): Scratch {
  const suffix = randomBytes(4).toString('hex');
  const schema = `bench_${name}_${suffix}`;
  const prefix = `sybench-${name}-${suffix}`;
  const artifactDir = mkdtempSync(join(tmpdir(), `sybench-${name}-${suffix}-`));
  return {
    schema,
    prefix,
    databaseUrl: `${baseDatabaseUrl}?schema=${schema}`,
    artifactDir,
    async remove() {
      await dropSchema(baseDatabaseUrl, schema).catch((error) => console.error('dropping schema failed:', error));
      await deleteKeys(redisUrl, prefix, scanCount).catch((error) => console.error('deleting Redis keys failed:', error));
      rmSync(artifactDir, { recursive: true, force: true });
    },
  };
}

/**
 * Switchyard's variables for a process of the run, to be read through loadEnv from this object rather than the
 * shell's environment (e.g. no VAULT_ADDR): production mode, the run's schema, key prefix and artifact directory,
 * a new random secret key, no GraphiQL. `extra` adds to them or overrides them.
 */
export function runEnvironment(scratch: Scratch, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'production',
    DATABASE_URL: scratch.databaseUrl,
    REDIS_URL: redisUrl,
    SWITCHYARD_QUEUE_PREFIX: scratch.prefix,
    SWITCHYARD_SECRET_KEY: randomBytes(32).toString('hex'),
    SWITCHYARD_ARTIFACT_DIR: scratch.artifactDir,
    SWITCHYARD_GRAPHIQL: 'false',
    ...extra,
  };
}
