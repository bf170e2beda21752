// Notification subscriber URLs are user input, so deliveries must not reach loopback, private, link-local (the
// cloud metadata service) or other special-purpose addresses unless SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS
// allows them (src/net/outbound-address-policy.ts, src/net/guarded-post.ts). With real DNS (localhost), real
// HTTP receivers on this machine, and an API on Postgres that allows no internal networks.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addressRanges, isAddressRange } from '../src/net/address-ranges.js';
import { guardedPost } from '../src/net/guarded-post.js';
import { OutboundAddressPolicy, RefusedAddressError, type ResolveAll } from '../src/net/outbound-address-policy.js';
import { NotificationService } from '../src/domain/notifications/notification-service.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { freePort } from './support/net.js';

const strict = new OutboundAddressPolicy(addressRanges([]));

describe('the outbound address policy', () => {
  it.each([
    ['127.0.0.1', 'a loopback address'],
    ['127.255.0.9', 'a loopback address'],
    ['10.1.2.3', 'a private address'],
    ['172.16.0.1', 'a private address'],
    ['172.31.255.254', 'a private address'],
    ['192.168.1.1', 'a private address'],
    ['169.254.169.254', 'a link-local address'], // the cloud metadata service
    ['100.64.0.1', 'a shared (carrier-grade NAT) address'],
    ['0.0.0.0', 'a "this network" address'],
    ['198.18.0.1', 'a benchmarking address'],
    ['224.0.0.1', 'a multicast address'],
    ['255.255.255.255', 'a reserved address'],
    ['::1', 'a loopback address'],
    ['::', 'the unspecified address'],
    ['fd12:3456::1', 'a unique local address'],
    ['fe80::1', 'a link-local address'],
    ['ff02::1', 'a multicast address'],
    ['::ffff:127.0.0.1', 'a loopback address'], // IPv4-mapped
    ['::ffff:a9fe:a9fe', 'a link-local address'], // 169.254.169.254, mapped
    ['64:ff9b::a00:1', 'a private address'], // 10.0.0.1 through NAT64
    ['64:ff9b::1', 'a "this network" address'], // 0.0.0.1 through NAT64
    ['64:ff9b:1::a9fe:a9fe', 'a link-local address'], // 169.254.169.254 through a local-use NAT64 prefix
    ['::7f00:1', 'an IPv4-compatible address'],
    ['::ffff:0:7f00:1', 'an IPv4-translated address'],
    ['2002:7f00:1::1', 'a 6to4 address'],
    ['2001:0:4136:e378::1', 'an IETF protocol address (Teredo among them)'],
    ['192.0.2.10', 'a documentation address'],
    ['2001:db8::1', 'a documentation address'],
    ['fec0::1', 'a site-local address'],
  ])('refuses %s, %s', (address, what) => {
    expect(strict.refusal(address)).toBe(`${address} is ${what}`);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700::1111', '2001:4860::8888', '64:ff9b::808:808', '64:ff9b:1::808:808'])('lets %s be reached', (address) => {
    expect(strict.refusal(address)).toBeNull();
  });

  it('lets the allowed networks be reached, and only them', () => {
    const policy = new OutboundAddressPolicy(addressRanges(['10.20.0.0/16', '192.168.1.7', 'fd00::/8']));
    expect(policy.refusal('10.20.3.4')).toBeNull();
    expect(policy.refusal('::ffff:10.20.3.4')).toBeNull();
    expect(policy.refusal('192.168.1.7')).toBeNull();
    expect(policy.refusal('fd00::5')).toBeNull();
    expect(policy.refusal('10.21.0.1')).toBe('10.21.0.1 is a private address');
    expect(policy.refusal('192.168.1.8')).toBe('192.168.1.8 is a private address');
    expect(policy.refusal('127.0.0.1')).toBe('127.0.0.1 is a loopback address');
  });

  it('knows, from a URL alone, the hosts that are addresses (however they are written) and localhost', () => {
    const refusal = (url: string) => strict.urlRefusal(new URL(url));
    expect(refusal('http://127.0.0.1:8080/hook')).toBe('127.0.0.1 is a loopback address');
    expect(refusal('http://0x7f.1/')).toBe('127.0.0.1 is a loopback address'); // URLs read hex and short forms
    expect(refusal('http://2130706433/')).toBe('127.0.0.1 is a loopback address');
    expect(refusal('http://[::ffff:169.254.169.254]/latest/meta-data/')).toBe('::ffff:a9fe:a9fe is a link-local address');
    expect(refusal('https://[fe80::1]:8443/')).toBe('fe80::1 is a link-local address');
    expect(refusal('http://localhost:3000/')).toBe('localhost is a loopback address');
    expect(refusal('http://LOCALHOST./')).toBe('localhost. is a loopback address');
    expect(refusal('http://api.localhost/')).toBe('api.localhost is a loopback address');
    // Other names are checked when a delivery resolves them.
    expect(refusal('https://hooks.example.com/x')).toBeNull();
    expect(refusal('https://localhost.example.com/x')).toBeNull();
    expect(strict.addressRefusal(new URL('http://localhost:3000/'))).toBeNull();
    expect(new OutboundAddressPolicy(addressRanges(['127.0.0.0/8'])).urlRefusal(new URL('http://localhost:3000/'))).toBeNull();
  });

  it('refuses, in its DNS lookup, a name that resolves to an address that may not be reached', async () => {
    const lookup = (policy: OutboundAddressPolicy, all: boolean) =>
      new Promise<{ error: Error | null; answer: string | LookupAddress[] }>((resolve) =>
        policy.lookup('localhost', { family: 4, all }, (error, answer) => resolve({ error, answer })),
      );
    for (const all of [false, true]) {
      const refused = await lookup(strict, all);
      expect(refused.error).toBeInstanceOf(RefusedAddressError);
      expect(refused.error?.message).toBe('localhost resolves to a loopback address'); // not which: that is internal DNS
    }
    const allowed = new OutboundAddressPolicy(addressRanges(['127.0.0.0/8']));
    expect(await lookup(allowed, false)).toEqual({ error: null, answer: '127.0.0.1' });
    expect(await lookup(allowed, true)).toEqual({ error: null, answer: [{ address: '127.0.0.1', family: 4 }] });
  });

  it('refuses a name when any one of its addresses may not be reached', async () => {
    const answers = (addresses: LookupAddress[]): ResolveAll => (_name, _options, callback) => callback(null, addresses);
    const policy = new OutboundAddressPolicy(addressRanges([]), answers([{ address: '8.8.8.8', family: 4 }, { address: 'fd00::5', family: 6 }]));
    const error = await new Promise<Error | null>((resolve) => policy.lookup('hooks.test', { all: true }, (failure) => resolve(failure)));
    expect(error).toEqual(new RefusedAddressError('hooks.test resolves to a unique local address'));
  });

  it('has at most two lookups under way, unanswered ones included: others wait their turn and fail as EAI_AGAIN after 5 s; one name shares its lookup', () => {
    // getaddrinfo runs on libuv's four-thread pool, shared with file reads, and cannot be cancelled: name servers
    // that never answer must not take the whole pool, one abandoned delivery after another.
    vi.useFakeTimers();
    try {
      const unanswered: Array<{ name: string; answer: () => void }> = [];
      const slow: ResolveAll = (name, _options, callback) => void unanswered.push({ name, answer: () => callback(null, [{ address: '8.8.8.8', family: 4 }]) });
      const policy = new OutboundAddressPolicy(addressRanges([]), slow);
      const answers: string[] = [];
      const ask = (name: string) => policy.lookup(name, { family: 4 }, (error, address) => answers.push(`${name}: ${error ? (error as NodeJS.ErrnoException).code : address}`));
      for (const name of ['a.test', 'b.test', 'a.test', 'c.test', 'd.test']) ask(name);
      // The second a.test shares the first one's lookup; c and d wait.
      expect(unanswered.map((u) => u.name)).toEqual(['a.test', 'b.test']);
      unanswered.shift()!.answer(); // a is answered, both of them: c starts
      expect(answers).toEqual(['a.test: 8.8.8.8', 'a.test: 8.8.8.8']);
      expect(unanswered.map((u) => u.name)).toEqual(['b.test', 'c.test']);
      vi.advanceTimersByTime(5000); // d waited its 5 s (less than a delivery's 10): it never started
      expect(answers.slice(2)).toEqual(['d.test: EAI_AGAIN']);
      for (const { answer } of unanswered.splice(0)) answer();
      expect(answers.slice(3)).toEqual(['b.test: 8.8.8.8', 'c.test: 8.8.8.8']);
      ask('e.test'); // the way is free again
      expect(unanswered.map((u) => u.name)).toEqual(['e.test']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('gives the place of a resolver that throws instead of answering back, and answers with its error', async () => {
    let calls = 0;
    const throwing: ResolveAll = () => {
      calls += 1;
      throw Object.assign(new Error('bad hints'), { code: 'ERR_INVALID_ARG_VALUE' });
    };
    const policy = new OutboundAddressPolicy(addressRanges([]), throwing);
    const ask = (name: string) => new Promise<NodeJS.ErrnoException | null>((resolve) => policy.lookup(name, { family: 4 }, (error) => resolve(error)));
    for (const name of ['a.test', 'b.test', 'c.test', 'd.test']) expect(await ask(name)).toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(calls).toBe(4); // none waited for a place a throw had kept
  });

  it('answers ENOTFOUND, not a crash, when a resolver finds no address', async () => {
    const none: ResolveAll = (_name, _options, callback) => callback(null, []);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => new OutboundAddressPolicy(addressRanges([]), none).lookup('nowhere.test', {}, (failure) => resolve(failure)));
    expect(error).toMatchObject({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND nowhere.test' });
  });

  it('takes no IPv6 zone in the allowed networks (a BlockList would never match it)', () => {
    expect(isAddressRange('fe80::1%eth0')).toBe(false);
    expect(isAddressRange('fe80::1')).toBe(true);
  });
});

/** An HTTP receiver on this machine that records what reaches it and answers `status` (never, when null). */
async function startReceiver(status: number | null) {
  const received: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (status !== null) res.writeHead(status).end('{"accepted":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    received,
    port,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('a guarded POST', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const post = { headers: { 'content-type': 'application/json', 'x-test': 'yes' }, body: '{"hello":"wörld €"}', timeoutMs: 5000 };

  beforeAll(async () => {
    receiver = await startReceiver(202);
  });
  afterAll(() => receiver?.close());

  it('sends nothing to a host that is an address that may not be reached', async () => {
    const before = receiver.received.length;
    await expect(guardedPost(new URL(`http://127.0.0.1:${receiver.port}/by-address`), post, strict)).rejects.toThrow(
      new RefusedAddressError('127.0.0.1 is a loopback address'),
    );
    expect(receiver.received.length).toBe(before);
  });

  it('sends nothing to a name that resolves to one, checked as the connection is made', async () => {
    const before = receiver.received.length;
    const failure = await guardedPost(new URL(`http://localhost:${receiver.port}/by-name`), post, strict).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RefusedAddressError);
    expect((failure as Error).message).toBe('localhost resolves to a loopback address');
    expect(receiver.received.length).toBe(before);
  });

  it('sends nothing when one of the addresses a name resolves to may not be reached, though another may', async () => {
    const before = receiver.received.length;
    const mixed: ResolveAll = (_name, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }, { address: '10.0.0.5', family: 4 }]);
    const policy = new OutboundAddressPolicy(addressRanges(['127.0.0.1']), mixed);
    await expect(guardedPost(new URL(`http://receiver.test:${receiver.port}/mixed`), post, policy)).rejects.toThrow(
      new RefusedAddressError('receiver.test resolves to a private address'),
    );
    expect(receiver.received.length).toBe(before);
  });

  it('delivers to the allowed networks, by address and by name, and answers the status', async () => {
    const loopback = new OutboundAddressPolicy(addressRanges(['127.0.0.0/8', '::1']));
    expect(await guardedPost(new URL(`http://127.0.0.1:${receiver.port}/allowed`), post, loopback)).toBe(202);
    expect(await guardedPost(new URL(`http://localhost:${receiver.port}/allowed-by-name`), post, loopback)).toBe(202);
    expect(receiver.received.slice(-2).map((r) => [r.path, r.body, r.headers['x-test'], r.headers['content-length']])).toEqual([
      ['/allowed', post.body, 'yes', '22'], // bytes, not characters
      ['/allowed-by-name', post.body, 'yes', '22'],
    ]);
  });

  it("never sends a URL's user name and password", async () => {
    const loopback = new OutboundAddressPolicy(addressRanges(['127.0.0.1']));
    expect(await guardedPost(new URL(`http://ops:s3cret@127.0.0.1:${receiver.port}/with-credentials`), post, loopback)).toBe(202);
    const last = receiver.received.at(-1)!;
    expect(last.path).toBe('/with-credentials');
    expect(last.headers.authorization).toBeUndefined();
  });

  it('gives up after its time limit with a TimeoutError', async () => {
    const silent = await startReceiver(null);
    try {
      const loopback = new OutboundAddressPolicy(addressRanges(['127.0.0.1']));
      const failure = await guardedPost(new URL(`http://127.0.0.1:${silent.port}/slow`), { ...post, timeoutMs: 300 }, loopback).catch((error: unknown) => error);
      expect((failure as Error).name).toBe('TimeoutError');
      expect(silent.received.map((r) => r.path)).toEqual(['/slow']);
    } finally {
      await silent.close();
    }
  });
});

describe('notification subscribers where no internal network is allowed (the default)', () => {
  let api: TestApi;
  let token: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    api = await startTestApi('notification-destinations', { notificationAllowedNetworks: [] });
    token = await api.token('OWNER');
    receiver = await startReceiver(200);
  }, 60_000);
  afterAll(async () => {
    await receiver?.close();
    await api?.close();
  });

  const subscribe = (url: string) =>
    api.gql(
      `mutation($url: String!) { createNotificationSubscriber(url: $url) { __typename
        ... on CreateNotificationSubscriberSuccess { created { subscriber { url } } }
        ... on ValidationError { code fieldErrors { path message } } } }`,
      { url },
      token,
    );

  it('refuses a subscriber whose URL is an internal address or localhost, saying why, and keeps nothing', async () => {
    for (const [url, why] of [
      ['http://169.254.169.254/latest/meta-data/', '169.254.169.254 is a link-local address'],
      [`http://127.0.0.1:${receiver.port}/hook`, '127.0.0.1 is a loopback address'],
      ['http://[::1]:8200/v1/sys/health', '::1 is a loopback address'],
      ['http://10.0.0.12:6379/', '10.0.0.12 is a private address'],
      ['http://localhost:5432/', 'localhost is a loopback address'],
    ]) {
      const res = await subscribe(url!);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data.createNotificationSubscriber).toEqual({
        __typename: 'ValidationError',
        code: 'VALIDATION_FAILED',
        fieldErrors: [{ path: ['url'], message: `must not point at internal networks: ${why} (see SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS)` }],
      });
    }
    expect(await api.prisma.notificationSubscriber.count()).toBe(0);
    const accepted = await subscribe('https://hooks.example.com/switchyard');
    expect(accepted.body.data.createNotificationSubscriber).toEqual({ __typename: 'CreateNotificationSubscriberSuccess', created: { subscriber: { url: 'https://hooks.example.com/switchyard' } } });
  });

  it('records a delivery to a name that resolves to an internal address as refused, and sends nothing', async () => {
    // Made before the check existed (or a name that resolves to an internal address now): checked at delivery.
    const secretRef = `notifications/legacy-${randomUUID()}`;
    await api.services.secrets.put(secretRef, { secret: 'legacy-secret' });
    const subscriber = await api.prisma.notificationSubscriber.create({
      data: { url: `http://localhost:${receiver.port}/legacy`, events: [], secretRef, createdBy: 'cli' },
    });
    const job = { subscriberId: subscriber.id, notificationId: randomUUID(), event: 'task.succeeded', payload: { event: 'task.succeeded' } };
    const error = 'refused: localhost resolves to a loopback address (see SWITCHYARD_NOTIFICATION_ALLOWED_NETWORKS)';
    await expect(api.services.notifications.deliver(job, 1)).rejects.toThrow(`notification ${job.notificationId} to subscriber ${subscriber.id}: ${error}`);
    const attempts = await api.prisma.notificationAttempt.findMany({ where: { subscriberId: subscriber.id } });
    expect(attempts).toMatchObject([{ notificationId: job.notificationId, attempt: 1, ok: false, responseStatus: null, error }]);
    expect(receiver.received).toEqual([]);
  });

  it('records a connection refused on every address of a name with IPv4 and IPv6 ones as a failure, to be retried', async () => {
    // Node then throws an AggregateError with an empty message: the attempt must still say what happened, and
    // deliver must throw so BullMQ retries.
    const dualStack: ResolveAll = (_name, _options, callback) => callback(null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]);
    const notifications = new NotificationService(api.prisma, api.services.secrets, api.services.secretWrites, api.queues, api.services.audit, async () => undefined, new OutboundAddressPolicy(addressRanges(['127.0.0.1', '::1']), dualStack));
    const secretRef = `notifications/down-${randomUUID()}`;
    await api.services.secrets.put(secretRef, { secret: 'down-secret' });
    const subscriber = await api.prisma.notificationSubscriber.create({ data: { url: `http://receiver.test:${await freePort()}/down`, events: [], secretRef, createdBy: 'cli' } });
    const job = { subscriberId: subscriber.id, notificationId: randomUUID(), event: 'task.failed', payload: { event: 'task.failed' } };
    await expect(notifications.deliver(job, 1)).rejects.toThrow(/ECONNREFUSED 127\.0\.0\.1/);
    const [attempt] = await api.prisma.notificationAttempt.findMany({ where: { subscriberId: subscriber.id } });
    expect(attempt).toMatchObject({ ok: false, responseStatus: null, error: expect.stringMatching(/^connect ECONNREFUSED 127\.0\.0\.1:\d+/) });
  });
});
