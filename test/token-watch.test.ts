// TokenWatch (src/server/token-watch.ts) on its own: what is registered after its token has ended. The ends
// themselves, announced by any replica or found by the re-check, are covered end to end in subscriptions.test.ts
// and hardening.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenService } from '../src/domain/auth/token-service.js';
import { TokenWatch } from '../src/server/token-watch.js';

// Only the periodic re-check asks the token service, and these tests never wait for one.
const neverRechecked = { noLongerValid: async () => [] } as unknown as TokenService;
let watch: TokenWatch;
afterEach(() => watch?.close());

describe('TokenWatch', () => {
  it('ends what registers after its token ended (a revocation announced while the token was looked up), and nothing of other tokens', async () => {
    watch = new TokenWatch(neverRechecked, 3_600_000);
    watch.end('revoked');
    const ended: string[] = [];
    watch.add('revoked', () => ended.push('late connection'));
    watch.add('valid', () => ended.push('other token'));
    expect(ended).toEqual([]); // not inside the registration itself
    await Promise.resolve();
    expect(ended).toEqual(['late connection']);
  });

  it('ends what is registered when its token ends, once', async () => {
    watch = new TokenWatch(neverRechecked, 3_600_000);
    const ended: string[] = [];
    const stop = watch.add('token', () => ended.push('a'));
    watch.add('token', () => ended.push('b'));
    const unwatched = watch.add('token', () => ended.push('unwatched'));
    unwatched();
    watch.end('token');
    watch.end('token');
    expect(ended).toEqual(['a', 'b']);
    stop(); // after the end: harmless
  });
});
