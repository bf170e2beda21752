// A secret and the row that names it live in two stores. domain/secret-writes.ts notes each secret whose row may
// be missing (PendingSecret), and the API's sweep deletes the secret of an old note that no row names: what a
// crash between the two writes, or a secret store that failed during a deletion, would otherwise leave behind
// for good (org credentials above all). Against Postgres, with the built-in store.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/db/prisma.js';
import { pendingSecretMaxAgeMs } from '../src/domain/secret-writes.js';
import { BuiltinSecretStore } from '../src/secrets/builtin-store.js';
import { startTestApi, type TestApi } from './support/harness.js';
import { waitFor } from './support/worker-harness.js';

/** The built-in store, whose deletes can be made to fail (a secret store that is down), for all names or some. */
class FlakyStore extends BuiltinSecretStore {
  failDeletes: boolean | ((name: string) => boolean) = false;
  override async delete(name: string): Promise<void> {
    if (this.failDeletes === true || (typeof this.failDeletes === 'function' && this.failDeletes(name))) throw new Error('secret store unreachable');
    return super.delete(name);
  }
}

let api: TestApi;
let token: string;
let store: FlakyStore;

beforeAll(async () => {
  api = await startTestApi('secret-writes', {
    secrets: (prisma: PrismaClient) => (store = new FlakyStore(prisma, randomBytes(32))),
  });
  token = await api.token('OWNER');
}, 60_000);

afterAll(async () => {
  await api?.close();
});

async function data(query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const res = await api.gql(query, variables, token);
  expect(res.body.errors, JSON.stringify(res.body.errors)).toBeUndefined();
  return res.body.data;
}

const stored = async (name: string) => (await api.prisma.secret.count({ where: { name } })) === 1;
const notes = async () => (await api.prisma.pendingSecret.findMany({ orderBy: { name: 'asc' } })).map((note) => note.name);
/** Makes notes look as old as a write or deletion that will never finish. */
const age = (names: string[]) =>
  api.prisma.pendingSecret.updateMany({ where: { name: { in: names } }, data: { createdAt: new Date(Date.now() - pendingSecretMaxAgeMs - 1000) } });

async function registerOrg(alias: string): Promise<string> {
  const result = await data(
    `mutation($alias: String!) { registerOrg(input: { alias: $alias, kind: SANDBOX, credentials: { instanceUrl: "https://sw.my.salesforce.com", refreshToken: "5Aep861secretwrites" } }) { __typename } }`,
    { alias },
  );
  expect(result.registerOrg.__typename).toBe('RegisterOrgSuccess');
  return (await api.prisma.org.findUniqueOrThrow({ where: { alias } })).secretRef;
}

describe('writing and deleting secrets with their rows', () => {
  it('leaves no note once each write or deletion is done', async () => {
    const secretRef = await registerOrg('sw-plain');
    await data(`mutation { rotateOrgCredentials(alias: "sw-plain", credentials: { instanceUrl: "https://sw.my.salesforce.com", refreshToken: "5Aep861rotated" }) { __typename } }`);
    const source = await data(`mutation { createWebhookSource(kind: GITHUB, name: "sw-source") { __typename ... on CreateWebhookSourceSuccess { created { source { id } } } } }`);
    const subscriber = await data(`mutation { createNotificationSubscriber(url: "https://hooks.example.com/sw") { __typename ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`);
    expect(await notes()).toEqual([]);
    await data(`mutation { removeOrg(alias: "sw-plain") { __typename } }`);
    await data(`mutation($id: ID!) { deleteWebhookSource(id: $id) { __typename } }`, { id: source.createWebhookSource.created.source.id });
    await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id: subscriber.createNotificationSubscriber.created.subscriber.id });
    expect(await notes()).toEqual([]);
    expect(await stored(secretRef)).toBe(false);
  });

  it('sweeps the credentials of a registration that stopped between writing them and the org', async () => {
    const name = `orgs/${randomUUID()}`;
    // The process stops while the row is being written: the write never returns.
    void api.services.secretWrites.putThen(name, { refreshToken: '5Aep861crashed', instanceUrl: 'https://x.my.salesforce.com' }, () => new Promise(() => {}));
    await waitFor(async () => (await notes()).includes(name) && (await stored(name)), 15_000, 'the note and the secret to be written');
    // Too recent: a write may still be under way.
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [], kept: [], failed: [] });
    expect(await stored(name)).toBe(true);
    await age([name]);
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [name], kept: [], failed: [] });
    expect(await stored(name)).toBe(false);
    expect(await notes()).toEqual([]);
  });

  it('keeps a secret whose row was written though its note was left, and drops the note', async () => {
    const secretRef = await registerOrg('sw-kept');
    await api.prisma.pendingSecret.create({ data: { name: secretRef } }); // stopped before dropping it
    await age([secretRef]);
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [], kept: [secretRef], failed: [] });
    expect(await stored(secretRef)).toBe(true);
    expect(await notes()).toEqual([]);
  });

  it('deletes orgs, webhook sources and subscribers while the secret store is down, and their secrets once it is back', async () => {
    const orgSecret = await registerOrg('sw-down');
    const source = (await data(`mutation { createWebhookSource(kind: GITLAB, name: "sw-down") { ... on CreateWebhookSourceSuccess { created { source { id } } } } }`)).createWebhookSource.created.source.id;
    const subscriber = (await data(`mutation { createNotificationSubscriber(url: "https://hooks.example.com/sw-down") { ... on CreateNotificationSubscriberSuccess { created { subscriber { id } } } } }`)).createNotificationSubscriber.created.subscriber.id;
    const secretRefs = [
      orgSecret,
      (await api.prisma.webhookSource.findFirstOrThrow({ where: { name: 'sw-down' } })).secretRef,
      (await api.prisma.notificationSubscriber.findFirstOrThrow({ where: { url: 'https://hooks.example.com/sw-down' } })).secretRef,
    ].sort();
    store.failDeletes = true;
    try {
      expect((await data(`mutation { removeOrg(alias: "sw-down") { __typename } }`)).removeOrg.__typename).toBe('RemoveOrgSuccess');
      expect((await data(`mutation($id: ID!) { deleteWebhookSource(id: $id) { __typename } }`, { id: source })).deleteWebhookSource.__typename).toBe('DeleteWebhookSourceSuccess');
      expect((await data(`mutation($id: ID!) { deleteNotificationSubscriber(id: $id) { __typename } }`, { id: subscriber })).deleteNotificationSubscriber.__typename).toBe('DeleteNotificationSubscriberSuccess');
      for (const name of secretRefs) expect(await stored(name), name).toBe(true);
      await age(secretRefs);
      // Still down: nothing is lost, the notes stay, renewed: tried again once they are old again.
      expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [], kept: [], failed: secretRefs });
      expect(await notes()).toEqual(secretRefs);
    } finally {
      store.failDeletes = false;
    }
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [], kept: [], failed: [] });
    await age(secretRefs);
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: secretRefs, kept: [], failed: [] });
    for (const name of secretRefs) expect(await stored(name), name).toBe(false);
    expect(await notes()).toEqual([]);
  });

  it('goes on past a secret the store keeps failing to delete', async () => {
    const [stuck, other] = [`notifications/${randomUUID()}`, `orgs/${randomUUID()}`];
    for (const name of [stuck, other]) {
      await store.put(name, { secret: 'left-behind' });
      await api.prisma.pendingSecret.create({ data: { name } });
    }
    await age([stuck, other]);
    store.failDeletes = (name) => name === stuck;
    try {
      expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [other], kept: [], failed: [stuck] });
    } finally {
      store.failDeletes = false;
    }
    await age([stuck]);
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [stuck], kept: [], failed: [] });
  });

  it('leaves a secret alone while a write or deletion of it is under way, even with an old note', async () => {
    const secretRef = await registerOrg('sw-busy');
    await api.prisma.pendingSecret.create({ data: { name: secretRef } });
    await age([secretRef]);
    await api.prisma.pendingSecret.create({ data: { name: secretRef } }); // a rotation, say, just began
    expect(await api.services.secretWrites.sweep()).toEqual({ deleted: [], kept: [], failed: [] });
    expect(await notes()).toEqual([secretRef, secretRef]);
    // Another write of it that ends drops its own note only: the others' stay with their secret's fate.
    await api.services.secretWrites.putThen(secretRef, { refreshToken: '5Aep861busy', instanceUrl: 'https://x.my.salesforce.com' }, async () => 'written');
    expect(await notes()).toEqual([secretRef, secretRef]);
    await api.prisma.pendingSecret.deleteMany({ where: { name: secretRef } });
  });

  it('keeps a rotated secret when the rotation fails with its org still there, and drops a rotation that lost to a removal', async () => {
    const secretRef = await registerOrg('sw-rotate');
    const failing = api.services.secretWrites.putThen(secretRef, { refreshToken: '5Aep861kept', instanceUrl: 'https://x.my.salesforce.com' }, async () => {
      throw new Error('the row write failed');
    });
    await expect(failing).rejects.toThrow('the row write failed');
    expect(await stored(secretRef)).toBe(true); // the org still names it
    // A removal won the race: the rotation put the secret again after the removal deleted it.
    await data(`mutation { removeOrg(alias: "sw-rotate") { __typename } }`);
    const late = api.services.secretWrites.putThen(secretRef, { refreshToken: '5Aep861late', instanceUrl: 'https://x.my.salesforce.com' }, async () => {
      throw new Error('org gone');
    });
    await expect(late).rejects.toThrow('org gone');
    expect(await stored(secretRef)).toBe(false);
    expect(await notes()).toEqual([]);
  });

  it('sweeps as an API replica starts', async () => {
    const name = `webhooks/${randomUUID()}`;
    await store.put(name, { secret: 'left-behind' });
    await api.prisma.pendingSecret.create({ data: { name } });
    await age([name]);
    const replica = await startTestApi('secret-writes-replica', { shareWith: api });
    try {
      await waitFor(async () => !(await stored(name)), 15_000, 'the new replica to sweep the secret');
      expect(await notes()).toEqual([]);
    } finally {
      await replica.close();
    }
  });

  it('knows every kind of row that names a secret (a new one must be added to SecretWrites.isNamed)', async () => {
    const schema = await readFile(new URL('../prisma/schema.prisma', import.meta.url), 'utf8');
    const models = [...schema.matchAll(/^model (\w+) \{([^}]*)\}/gm)].filter(([, , body]) => /^\s+secretRef\s/m.test(body!)).map(([, name]) => name);
    expect(models.sort()).toEqual(['NotificationSubscriber', 'Org', 'WebhookSource']);
  });
});
