import { BuiltinSecretStore } from './builtin-store.js';
import { VaultSecretStore } from './vault-store.js';
export function createSecretStore(env, prisma, key) {
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
