// The HashiCorp Vault secret store, used when VAULT_ADDR is set. Secrets live in a KV v2 engine at
// `<mount>/data/<pathPrefix>/<name>`; deleting one removes its metadata and every version, so nothing lingers.
// A task's child process never receives a value from Switchyard: issueGrant reads the secret with
// X-Vault-Wrap-TTL, so Vault keeps the response behind a single-use wrapping token that only the child
// redeems (see vault-unwrap.ts). The parent process never sees the value in that exchange either.
//
// Authentication is a static token or an AppRole (role id + secret id). A static token that expires is renewed
// from two thirds of its TTL (renew-self). AppRole logs in on first use, again
// shortly before the token's lease ends, and once more when Vault answers 403 to a token it no longer knows.
// Tokens, the secret id and secret values are held in private fields and never appear in error messages.
import type { CredentialGrant, SecretStore, SecretValue } from './secret-store.js';
import {
  assertVaultAddress,
  createVaultClient,
  toSecretValue,
  toVaultRequestError,
  VaultRequestError,
  type VaultClient,
} from './vault-unwrap.js';

export { VaultRequestError } from './vault-unwrap.js';

export interface VaultSecretStoreOptions {
  /** e.g. https://vault.example.com:8200 */
  address: string;
  /** Static token auth. Mutually exclusive with roleId/secretId. */
  token?: string;
  /** AppRole auth (mounted at auth/approle). */
  roleId?: string;
  secretId?: string;
  /** KV v2 mount, e.g. "secret". */
  mount: string;
  /** Folder under the mount that holds Switchyard's secrets, e.g. "switchyard". */
  pathPrefix: string;
  /** Vault Enterprise namespace (X-Vault-Namespace). */
  namespace?: string;
  /** Per-request timeout; default 10 s. */
  requestTimeoutMs?: number;
}

/** Vault's wrapping TTL for grants never exceeds this, whatever the caller asks for. */
export const MAX_GRANT_TTL_SECONDS = 60;

const SEGMENT = /^[A-Za-z0-9_.-]+$/;

/** A slash-separated path of plain segments; no empty, "." or ".." segments. */
function isPlainPath(value: string): boolean {
  return value.split('/').every((segment) => SEGMENT.test(segment) && segment !== '.' && segment !== '..');
}

function normalizeFolder(value: string, what: string, allowEmpty: boolean): string {
  const trimmed = value.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' && allowEmpty) return '';
  if (!isPlainPath(trimmed)) throw new Error(`Invalid Vault ${what} "${value}": use letters, digits, . _ - and /`);
  return trimmed;
}

interface Session {
  token: string;
  /** Log in again from this moment (a little before the lease ends); Infinity for non-expiring tokens. */
  renewAt: number;
}

export class VaultSecretStore implements SecretStore {
  readonly kind = 'vault' as const;
  /** Where grants are redeemed; the child process connects here. */
  readonly address: string;
  readonly mount: string;
  readonly pathPrefix: string;

  readonly #client: VaultClient;
  readonly #staticToken: string | undefined;
  readonly #roleId: string | undefined;
  readonly #secretId: string | undefined;
  /** Passed to the child with each grant, so it unwraps in the same namespace. */
  readonly #namespace: string | undefined;
  #session: Session | null = null;
  #login: Promise<string> | null = null;
  /** Whether the static token expires and can be renewed: unknown (null) until lookup-self has said. */
  #staticRenewable: boolean | null = null;
  /** When the static token is next looked up (while that is unknown) or renewed. */
  #staticNextAt = 0;
  #renewal: Promise<void> | null = null;
  /** Renews the static token on time even when nothing calls Vault then (a quiet replica). */
  #renewTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: VaultSecretStoreOptions) {
    assertVaultAddress(options.address);
    this.address = options.address.replace(/\/+$/, '');
    this.mount = normalizeFolder(options.mount, 'KV mount', false);
    this.pathPrefix = normalizeFolder(options.pathPrefix, 'path prefix', true);

    const hasToken = Boolean(options.token);
    const hasAppRole = Boolean(options.roleId) || Boolean(options.secretId);
    if (hasToken && hasAppRole) throw new Error('Configure either a Vault token or an AppRole (role id and secret id), not both');
    if (!hasToken && !(options.roleId && options.secretId)) {
      throw new Error('Vault authentication needs a token, or both an AppRole role id and secret id');
    }
    this.#staticToken = options.token || undefined;
    this.#roleId = options.roleId || undefined;
    this.#secretId = options.secretId || undefined;
    this.#namespace = options.namespace || undefined;
    // Tokens are passed per request (X-Vault-Token), never stored on the shared client.
    this.#client = createVaultClient(
      {
        address: this.address,
        namespace: options.namespace,
        timeoutMs: options.requestTimeoutMs,
      },
      'packages', // this process lives long: the bundle is for task children
    );
    // A static token is looked up at once, so its renewals are timed from the start, not from the first call.
    if (this.#staticToken) void this.#renewStaticToken();
  }

  get authMethod(): 'token' | 'approle' {
    return this.#staticToken ? 'token' : 'approle';
  }

  async put(name: string, value: SecretValue): Promise<void> {
    const data = toSecretValue(value, `Secret ${name}`);
    const path = this.#path('data', name);
    // KV v2 "Create/Update Secret": POST <mount>/data/<path> { data } creates a new version.
    await this.#call(`writing secret ${name}`, (headers) => this.#client.write(path, { data }, { headers }), Object.values(data));
  }

  async get(name: string): Promise<SecretValue | null> {
    const path = this.#path('data', name);
    let response: { data?: { data?: unknown } } | undefined;
    try {
      // KV v2 "Read Secret Version" (latest); 404 when missing or deleted.
      response = await this.#call(`reading secret ${name}`, (headers) => this.#client.read(path, { headers }));
    } catch (error) {
      if (error instanceof VaultRequestError && error.status === 404) return null;
      throw error;
    }
    return toSecretValue(response?.data?.data, `Secret ${name}`);
  }

  async delete(name: string): Promise<void> {
    const path = this.#path('metadata', name);
    try {
      // KV v2 "Delete Metadata and All Versions": nothing of the secret remains, not even old versions.
      await this.#call(`deleting secret ${name}`, (headers) => this.#client.delete(path, { headers }));
    } catch (error) {
      if (error instanceof VaultRequestError && error.status === 404) return;
      throw error;
    }
  }

  /**
   * Reads the secret wrapped (X-Vault-Wrap-TTL): Vault answers with a single-use wrapping token instead of
   * the data. The grant lives min(ttlSeconds, 60) seconds.
   */
  async issueGrant(name: string, ttlSeconds: number): Promise<CredentialGrant> {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 1) throw new RangeError('A grant must live at least 1 second');
    const wrapTtl = Math.min(Math.floor(ttlSeconds), MAX_GRANT_TTL_SECONDS);
    const path = this.#path('data', name);
    const startedAt = Date.now();
    let response: { wrap_info?: { token?: unknown; ttl?: unknown } | null } | undefined;
    try {
      response = await this.#call(`issuing a grant for secret ${name}`, (headers) =>
        this.#client.read(path, { headers: { ...headers, 'X-Vault-Wrap-TTL': `${wrapTtl}s` } }),
      );
    } catch (error) {
      if (error instanceof VaultRequestError && error.status === 404) {
        throw new VaultRequestError(`Cannot issue a grant for secret ${name}: it does not exist in Vault`, 404);
      }
      throw error;
    }
    const info = response?.wrap_info;
    const token = info?.token;
    if (typeof token !== 'string' || token === '') {
      // Something between us and Vault dropped X-Vault-Wrap-TTL. Whatever came back is not passed on.
      throw new VaultRequestError(`Cannot issue a grant for secret ${name}: Vault did not wrap the response`);
    }
    const ttl = typeof info?.ttl === 'number' && info.ttl > 0 ? Math.min(info.ttl, wrapTtl) : wrapTtl;
    // Measured from before the request, so the grant never claims to outlive Vault's wrapping token.
    return {
      kind: 'vault',
      address: this.address,
      ...(this.#namespace ? { namespace: this.#namespace } : {}),
      token,
      expiresAt: new Date(startedAt + ttl * 1000).toISOString(),
    };
  }

  /** Checks the credentials (auth/token/lookup-self): e.g. at startup. */
  async verify(): Promise<{ ttlSeconds: number; renewable: boolean; policies: string[] }> {
    const response: { data?: { ttl?: unknown; renewable?: unknown; policies?: unknown } } | undefined = await this.#call(
      'looking up the Vault token',
      (headers) => this.#client.tokenLookupSelf({ requestOptions: { headers } }),
    );
    const data = response?.data;
    return {
      ttlSeconds: typeof data?.ttl === 'number' ? data.ttl : 0,
      renewable: data?.renewable === true,
      policies: Array.isArray(data?.policies) ? data.policies.filter((p): p is string => typeof p === 'string') : [],
    };
  }

  #path(kind: 'data' | 'metadata', name: string): string {
    if (typeof name !== 'string' || !isPlainPath(name)) {
      throw new Error(`Invalid secret name "${String(name)}": use letters, digits, . _ - and /`);
    }
    return [this.mount, kind, this.pathPrefix, name].filter((part) => part !== '').join('/');
  }

  /**
   * Runs a request with a valid token. With AppRole, a 403 whose token Vault no longer knows (expired, revoked)
   * logs in again, once; a 403 to a token that is still valid is the policy's answer, and logging in again would
   * only spend one of the secret id's uses per call.
   */
  async #call<T>(operation: string, request: (headers: Record<string, string>) => Promise<T>, values: string[] = []): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const token = await this.#token();
      try {
        return await request({ 'X-Vault-Token': token });
      } catch (error) {
        const failure = toVaultRequestError(this.address, operation, error, [token, this.#secretId, this.#roleId, ...values]);
        if (failure.status === 403 && !this.#staticToken && attempt === 1 && !(await this.#stillValid(token))) {
          if (this.#session?.token === token) this.#session = null;
          continue;
        }
        throw failure;
      }
    }
  }

  /**
   * Whether Vault still knows the token (auth/token/lookup-self, which every token may call). Only Vault saying so
   * (401/403) counts as no: a lookup that timed out or met a 5xx tells nothing, and a login would spend a use.
   */
  async #stillValid(token: string): Promise<boolean> {
    try {
      await this.#client.tokenLookupSelf({ requestOptions: { headers: { 'X-Vault-Token': token } } });
      return true;
    } catch (error) {
      const { status } = toVaultRequestError(this.address, 'looking up the Vault token', error, [token]);
      return status !== 401 && status !== 403;
    }
  }

  async #token(): Promise<string> {
    if (this.#staticToken) {
      if (Date.now() >= this.#staticNextAt) await this.#renewStaticToken();
      return this.#staticToken;
    }
    if (this.#session && Date.now() < this.#session.renewAt) return this.#session.token;
    // One login at a time; concurrent callers share it.
    this.#login ??= this.#approleLogin().finally(() => {
      this.#login = null;
    });
    return this.#login;
  }

  /** Looks the static token up or renews it now; concurrent callers share one. */
  #renewStaticToken(): Promise<void> {
    this.#renewal ??= this.#keepStaticTokenAlive().finally(() => {
      this.#renewal = null;
    });
    return this.#renewal;
  }

  /** Stops the static token's renewal timer (the process is shutting down). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#renewTimer);
  }

  /**
   * A static token that expires (anything but a root token: it has a TTL and is renewable) is renewed
   * (auth/token/renew-self) once two thirds of its TTL have passed, so it lives as long as its max TTL allows. A
   * lookup or renewal that fails does not fail the request that triggered it (the token is valid until it
   * expires): it is tried again a minute later.
   */
  async #keepStaticTokenAlive(): Promise<void> {
    const requestOptions = { headers: { 'X-Vault-Token': this.#staticToken! } };
    const startedAt = Date.now();
    try {
      let seconds: unknown;
      if (this.#staticRenewable === null) {
        const looked: { data?: { ttl?: unknown; renewable?: unknown } } | undefined = await this.#client.tokenLookupSelf({ requestOptions });
        seconds = looked?.data?.ttl;
        // A root or otherwise non-expiring token (TTL 0), or one that cannot be renewed, is left as it is.
        this.#staticRenewable = looked?.data?.renewable === true && typeof seconds === 'number' && seconds > 0;
      } else {
        const renewed: { auth?: { lease_duration?: unknown } } | undefined = await this.#client.tokenRenewSelf({ requestOptions });
        seconds = renewed?.auth?.lease_duration;
      }
      this.#staticNextAt = this.#staticRenewable && typeof seconds === 'number' && seconds > 0 ? startedAt + (seconds * 1000 * 2) / 3 : Number.POSITIVE_INFINITY;
    } catch {
      this.#staticNextAt = Date.now() + 60_000;
    } finally {
      // renew-self stores the token it returns on the client; this store passes tokens per request instead.
      this.#client.token = '';
    }
    clearTimeout(this.#renewTimer);
    if (Number.isFinite(this.#staticNextAt) && !this.#closed) {
      // Renews whatever the clock says when it fires: a timer can fire a little early, and must not then lapse.
      this.#renewTimer = setTimeout(() => void this.#renewStaticToken(), Math.max(0, this.#staticNextAt - Date.now()));
      this.#renewTimer.unref(); // never what keeps a process alive
    }
  }

  async #approleLogin(): Promise<string> {
    let response: { auth?: { client_token?: unknown; lease_duration?: unknown } } | undefined;
    // Login is unauthenticated; make sure no stale token rides along.
    this.#client.token = '';
    const startedAt = Date.now();
    try {
      // node-vault's approleLogin: POST auth/approle/login { role_id, secret_id }.
      response = await this.#client.approleLogin({ role_id: this.#roleId, secret_id: this.#secretId });
    } catch (error) {
      throw toVaultRequestError(this.address, 'AppRole login', error, [this.#roleId, this.#secretId]);
    } finally {
      // approleLogin stores the new token on the client; this store passes tokens per request instead.
      this.#client.token = '';
    }
    const token = response?.auth?.client_token;
    if (typeof token !== 'string' || token === '') {
      throw new VaultRequestError(`Vault ${new URL(this.address).origin}: AppRole login returned no client token`);
    }
    const lease = typeof response?.auth?.lease_duration === 'number' ? response.auth.lease_duration : 0;
    // Re-login when 80% of the lease has passed, at most a minute before it ends.
    const margin = Math.min(60_000, lease * 1000 * 0.2);
    this.#session = { token, renewAt: lease > 0 ? startedAt + lease * 1000 - margin : Number.POSITIVE_INFINITY };
    return token;
  }
}
