// Picks the secret store from configuration: HashiCorp Vault when VAULT_ADDR is set, otherwise the built-in
// store (AES-256-GCM in Postgres). env.ts has already checked that Vault settings are complete.
import type { PrismaClient } from '../db/prisma.js';
import type { Env } from '../env.js';
import { BuiltinSecretStore } from './builtin-store.js';
import type { SecretStore } from './secret-store.js';
import { VaultSecretStore } from './vault-store.js';

type VaultEnv = Pick<
  Env,
  'VAULT_ADDR' | 'VAULT_TOKEN' | 'VAULT_ROLE_ID' | 'VAULT_SECRET_ID' | 'VAULT_NAMESPACE' | 'VAULT_KV_MOUNT' | 'VAULT_PATH_PREFIX'
>;

export function createSecretStore(env: VaultEnv, prisma: PrismaClient, key: Buffer): SecretStore {
  if (env.VAULT_ADDR) {
    return new VaultSecretStore({
      address: env.VAULT_ADDR,
      token: env.VAULT_TOKEN,
      roleId: env.VAULT_ROLE_ID,
      secretId: env.VAULT_SECRET_ID,
      namespace: env.VAULT_NAMESPACE,
      mount: env.VAULT_KV_MOUNT,
      pathPrefix: env.VAULT_PATH_PREFIX,
    });
  }
  return new BuiltinSecretStore(prisma, key);
}
