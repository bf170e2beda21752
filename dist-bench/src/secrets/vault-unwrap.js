// What a task's child process runs to obtain its credentials when Vault is the secret store: it redeems the
// response-wrapping token it was handed over IPC (POST sys/wrapping/unwrap with the wrapping token as its
// client token) and gets the KV v2 secret once; the token is worthless afterwards, and after its TTL.
//
// This module is loaded by that child, so it imports nothing but node-vault: no Prisma, no Redis, nothing
// else from Switchyard. The few helpers the parent's VaultSecretStore shares with it live here for the same
// reason (vault-store.ts imports them; never the other way round).
import vault from 'node-vault';
const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * A failed Vault call. The message says what was attempted, where and what Vault answered, and never
 * carries tokens, role/secret ids or secret values; nothing from the underlying HTTP client (whose
 * errors hold request headers and bodies) is attached.
 */
export class VaultRequestError extends Error {
    status;
    constructor(message, 
    /** Vault's HTTP status, when Vault answered at all. */
    status) {
        super(message);
        this.status = status;
        this.name = 'VaultRequestError';
    }
}
export function vaultOrigin(address) {
    try {
        return new URL(address).origin; // drops any user:password@ and path
    }
    catch {
        return '(invalid Vault address)';
    }
}
export function assertVaultAddress(address) {
    if (typeof address !== 'string' || !/^https?:\/\//.test(address) || !URL.canParse(address)) {
        throw new VaultRequestError('The Vault address must be an http:// or https:// URL');
    }
}
/**
 * A node-vault client that uses exactly what it is given. node-vault otherwise falls back to VAULT_TOKEN,
 * VAULT_NAMESPACE and VAULT_PREFIX from the process environment and turns TLS verification off when
 * VAULT_SKIP_VERIFY is set; its debug output would print request bodies (secret values) under
 * DEBUG=node-vault. None of that is wanted for a credential store.
 */
export function createVaultClient(options) {
    assertVaultAddress(options.address);
    const config = {
        apiVersion: 'v1',
        endpoint: options.address,
        token: options.token ?? '',
        debug: () => undefined,
        rpDefaults: { strictSSL: true },
        requestOptions: { timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS },
    };
    const client = vault(config);
    client.token = options.token ?? '';
    client.namespace = options.namespace || undefined;
    client.pathPrefix = '';
    return client;
}
/** Vault's HTTP status from a node-vault rejection, if Vault answered. */
export function vaultStatus(error) {
    const status = error?.response?.statusCode;
    return typeof status === 'number' ? status : undefined;
}
function redact(text, secrets) {
    let out = text;
    for (const secret of secrets) {
        if (secret && secret.length >= 4)
            out = out.split(secret).join('[redacted]');
    }
    return out;
}
/**
 * Turns a node-vault rejection into a VaultRequestError whose message is safe to log: Vault's own error
 * strings (which name no secrets) or the network error code, with `secrets` redacted just in case.
 */
export function toVaultRequestError(address, operation, error, secrets) {
    const status = vaultStatus(error);
    let detail;
    if (status !== undefined) {
        const body = error.response?.body;
        const errors = Array.isArray(body?.errors) ? body.errors.filter((e) => typeof e === 'string' && e !== '') : [];
        detail = `Vault answered HTTP ${status}`;
        // Redacted before shortening, so a cut can never leave part of a secret behind.
        if (errors.length > 0)
            detail += `: ${redact(errors.join('; '), secrets).slice(0, 500)}`;
        if (status === 403)
            detail += ' (the Vault token is missing, invalid or expired, or its policy does not cover this path)';
    }
    else {
        const code = error?.code;
        detail =
            typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)
                ? `Vault is unreachable (${code})`
                : 'the Vault client failed before Vault answered';
    }
    return new VaultRequestError(redact(`Vault ${vaultOrigin(address)}: ${operation} failed: ${detail}`, secrets), status);
}
/** Checks that a KV v2 `data.data` map is a flat map of strings; the error never includes the values. */
export function toSecretValue(data, what) {
    if (!data || typeof data !== 'object' || Array.isArray(data)) {
        throw new VaultRequestError(`${what}: Vault returned no secret data`);
    }
    const out = {};
    for (const [key, value] of Object.entries(data)) {
        if (typeof value !== 'string')
            throw new VaultRequestError(`${what}: field "${key}" is not a string`);
        out[key] = value;
    }
    return out;
}
/**
 * Redeems a Vault credential grant: the KV v2 secret it wraps, exactly once. Fails (VaultRequestError,
 * status 400) when the grant was already used or has expired. `namespace` is only needed with Vault
 * Enterprise namespaces.
 */
export async function unwrapVaultGrant(grant) {
    assertVaultAddress(grant.address);
    // Without a token node-vault would fall back to VAULT_TOKEN from the environment.
    if (typeof grant.token !== 'string' || grant.token === '') {
        throw new VaultRequestError('The Vault credential grant carries no wrapping token');
    }
    // The wrapping token is the client token of this call (X-Vault-Token) and is not repeated in the body:
    // Vault's docs warn that giving it in both places spends it without returning the value.
    const client = createVaultClient({ address: grant.address, token: grant.token, namespace: grant.namespace });
    let response;
    try {
        response = await client.unwrap();
    }
    catch (error) {
        const failure = toVaultRequestError(grant.address, 'unwrapping the credential grant', error, [grant.token]);
        if (failure.status === 400) {
            failure.message += ' (the grant was already used, has expired, or was never issued)';
        }
        throw failure;
    }
    return toSecretValue(response?.data?.data, 'Unwrapping the credential grant');
}
