// What a task's child process runs to obtain its credentials when Vault is the secret store: it redeems the
// response-wrapping token it was handed over IPC (POST sys/wrapping/unwrap with the wrapping token as its
// client token) and gets the KV v2 secret once; the token is worthless afterwards, and after its TTL.
//
// This module is loaded by that child, so it imports nothing but node-vault and what loads it (its prebuilt
// bundle, module-bundles/, and the module stand-ins, deferred-modules.ts): no Prisma, no Redis. The few
// helpers the parent's VaultSecretStore shares with it live here for the same reason (vault-store.ts imports
// them; never the other way round).
import type vault from 'node-vault';
import type { DeferredDependency } from '../deferred-modules.js';
import { loadEntries, requireEntries, type BundleSpec } from '../module-bundles/module-bundle.js';

/**
 * Packages node-vault's HTTP client (axios) requires when it loads but a Vault call never uses. Together they
 * are about a third of what loading node-vault costs (form-data pulls in mime-db and the get-intrinsic
 * family), which every child redeeming a Vault grant would pay again. They stay stand-ins until first use
 * (deferred-modules.ts); test/vault-store.test.ts checks that a grant is redeemed without loading them.
 */
export const deferredDependencies: readonly DeferredDependency[] = [
  {
    request: 'form-data',
    via: ['node-vault', 'axios'],
    usedFor: "axios's multipart bodies (toFormData); node-vault sends and receives JSON only",
  },
  {
    request: 'https-proxy-agent',
    via: ['node-vault', 'axios'],
    usedFor: "axios's tunnel through an HTTPS proxy (HTTPS_PROXY and friends, which the launcher passes on): loaded on the first proxied request",
  },
];

/**
 * Web globals axios reads as it loads: its fetch adapter feature-tests the Fetch API (`fetch`, `Request`,
 * `Response`, `ReadableStream`, constructing a Request), and it keeps the global `FormData` to recognise form
 * bodies. In Node 20 all but `fetch` are lazy, and the first read loads undici and Node's web streams: about a
 * third of the CPU loading node-vault cost a child (some 13 ms here). node-vault's requests go through axios's
 * http adapter (Node's http/https, axios's choice in Node), never its fetch adapter, and carry JSON, never a
 * FormData. So axios loads with these globals hidden: it records the fetch adapter as unsupported, and the
 * globals are put back, as they were, as soon as it has loaded (the load is synchronous: nothing else runs).
 */
export const fetchApiGlobals = ['fetch', 'Request', 'Response', 'ReadableStream', 'FormData'] as const;

function withoutFetchApi<T>(load: () => T): T {
  const hidden: Array<[string, PropertyDescriptor | undefined]> = [];
  try {
    for (const name of fetchApiGlobals) {
      const descriptor = Object.getOwnPropertyDescriptor(globalThis, name);
      if (descriptor && !descriptor.configurable) continue; // someone fixed it in place: leave it (axios then sees it)
      Object.defineProperty(globalThis, name, { value: undefined, configurable: true, writable: true });
      hidden.push([name, descriptor]);
    }
    return load();
  } finally {
    for (const [name, descriptor] of hidden) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete (globalThis as Record<string, unknown>)[name];
    }
  }
}

/** node-vault's bundle (module-bundles/module-bundle.ts): node-vault and axios, without those two, loaded without the Fetch API. */
export const nodeVaultBundle: BundleSpec = {
  name: 'node-vault',
  from: import.meta.url,
  entries: { client: 'node-vault' },
  deferred: deferredDependencies,
  whileLoading: withoutFetchApi,
};

/**
 * How node-vault is loaded: `bundle`, from its prebuilt bundle if it has a current one (a task child, which
 * loads it afresh for every task); `packages`, from node_modules (the long-lived worker or API process, which
 * loads it once and where tools that hook Node's module loading should see it). Either way with require()
 * after its unused dependencies are deferred: an ES import would load them before any code here runs, and
 * would make Node scan node-vault's source for named exports besides.
 */
export type NodeVaultSource = 'bundle' | 'packages';

function loadNodeVault(source: NodeVaultSource): typeof vault {
  return (source === 'bundle' ? loadEntries(nodeVaultBundle, ['client']) : requireEntries(nodeVaultBundle, ['client'])).client as typeof vault;
}

/** Same shape as SecretValue in secret-store.ts (not imported, to keep this module self-contained). */
export type UnwrappedSecret = Record<string, string>;

/** node-vault's client plus the fields its typings omit. */
export type VaultClient = vault.client & { namespace?: string; pathPrefix: string };

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A failed Vault call. The message says what was attempted, where and what Vault answered, and never
 * carries tokens, role/secret ids or secret values; nothing from the underlying HTTP client (whose
 * errors hold request headers and bodies) is attached.
 */
export class VaultRequestError extends Error {
  constructor(
    message: string,
    /** Vault's HTTP status, when Vault answered at all. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'VaultRequestError';
  }
}

export function vaultOrigin(address: string): string {
  try {
    return new URL(address).origin; // drops any user:password@ and path
  } catch {
    return '(invalid Vault address)';
  }
}

export function assertVaultAddress(address: unknown): asserts address is string {
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
export function createVaultClient(
  options: {
    address: string;
    token?: string;
    namespace?: string;
    timeoutMs?: number;
  },
  source: NodeVaultSource = 'bundle',
): VaultClient {
  assertVaultAddress(options.address);
  const config = {
    apiVersion: 'v1',
    endpoint: options.address,
    token: options.token ?? '',
    debug: () => undefined,
    rpDefaults: { strictSSL: true },
    requestOptions: { timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS },
  } satisfies vault.VaultOptions & { rpDefaults: { strictSSL: boolean } };
  const client = loadNodeVault(source)(config) as VaultClient;
  client.token = options.token ?? '';
  client.namespace = options.namespace || undefined;
  client.pathPrefix = '';
  return client;
}

/** Vault's HTTP status from a node-vault rejection, if Vault answered. */
export function vaultStatus(error: unknown): number | undefined {
  const status = (error as { response?: { statusCode?: unknown } } | null)?.response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/**
 * Turns a node-vault rejection into a VaultRequestError whose message is safe to log: Vault's own error
 * strings (which name no secrets) or the network error code, with `secrets` redacted just in case.
 */
export function toVaultRequestError(
  address: string,
  operation: string,
  error: unknown,
  secrets: readonly (string | undefined)[],
): VaultRequestError {
  const status = vaultStatus(error);
  let detail: string;
  if (status !== undefined) {
    const body = (error as { response?: { body?: unknown } }).response?.body as { errors?: unknown } | undefined;
    const errors = Array.isArray(body?.errors) ? body.errors.filter((e): e is string => typeof e === 'string' && e !== '') : [];
    detail = `Vault answered HTTP ${status}`;
    // Redacted before shortening, so a cut can never leave part of a secret behind.
    if (errors.length > 0) detail += `: ${redact(errors.join('; '), secrets).slice(0, 500)}`;
    if (status === 403) detail += ' (the Vault token is missing, invalid or expired, or its policy does not cover this path)';
  } else {
    const code = (error as { code?: unknown } | null)?.code;
    detail =
      typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)
        ? `Vault is unreachable (${code})`
        : 'the Vault client failed before Vault answered';
  }
  return new VaultRequestError(redact(`Vault ${vaultOrigin(address)}: ${operation} failed: ${detail}`, secrets), status);
}

/** Checks that a KV v2 `data.data` map is a flat map of strings; the error never includes the values. */
export function toSecretValue(data: unknown, what: string): UnwrappedSecret {
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new VaultRequestError(`${what}: Vault returned no secret data`);
  }
  const out: UnwrappedSecret = {};
  for (const [key, value] of Object.entries(data)) {
    if (typeof value !== 'string') throw new VaultRequestError(`${what}: field "${key}" is not a string`);
    out[key] = value;
  }
  return out;
}

/**
 * Redeems a Vault credential grant: the KV v2 secret it wraps, exactly once. Fails (VaultRequestError,
 * status 400) when the grant was already used or has expired. `namespace` is only needed with Vault
 * Enterprise namespaces.
 */
export async function unwrapVaultGrant(grant: { address: string; token: string; namespace?: string }): Promise<UnwrappedSecret> {
  assertVaultAddress(grant.address);
  // Without a token node-vault would fall back to VAULT_TOKEN from the environment.
  if (typeof grant.token !== 'string' || grant.token === '') {
    throw new VaultRequestError('The Vault credential grant carries no wrapping token');
  }
  // The wrapping token is the client token of this call (X-Vault-Token) and is not repeated in the body:
  // Vault's docs warn that giving it in both places spends it without returning the value.
  const client = createVaultClient({ address: grant.address, token: grant.token, namespace: grant.namespace });
  let response: { data?: { data?: unknown } } | undefined;
  try {
    response = await client.unwrap();
  } catch (error) {
    const failure = toVaultRequestError(grant.address, 'unwrapping the credential grant', error, [grant.token]);
    if (failure.status === 400) {
      failure.message += ' (the grant was already used, has expired, or was never issued)';
    }
    throw failure;
  }
  return toSecretValue(response?.data?.data, 'Unwrapping the credential grant');
}
