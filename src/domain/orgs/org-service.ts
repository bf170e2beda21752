import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Prisma, PrismaClient } from '../../db/prisma.js';
import type { Org } from '../../generated/prisma/client.js';
import type { OrgKind } from '../../generated/prisma/enums.js';
import type { SecretStore } from '../../secrets/secret-store.js';
import type { SecretWrites } from '../secret-writes.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Principal } from '../auth/principal.js';
import { ConflictError, NotFoundError, unlessGone } from '../errors.js';
import { activeTaskStatuses, waitingTaskStatuses } from '../tasks/task-states.js';
import { parseInput } from '../validation.js';
import { credentialsToSecret, parseCredentials, type CredentialsInput } from './org-credentials.js';

const orgKinds = ['PRODUCTION', 'SANDBOX', 'SCRATCH', 'DEVELOPER'] as const;
export const aliasSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'must be 1-80 letters, digits, ".", "_" or "-", starting with a letter or digit');

const registerInput = z.object({
  alias: aliasSchema,
  kind: z.enum(orgKinds),
  isDevHub: z.boolean().default(false),
});

const updateInput = z.object({
  alias: aliasSchema.optional(),
  kind: z.enum(orgKinds).optional(),
  isDevHub: z.boolean().optional(),
});

export interface RegisterOrgInput {
  alias: string;
  kind: OrgKind;
  isDevHub?: boolean | null;
  credentials: CredentialsInput;
}

export interface OrgChecks {
  queue(actor: Principal, org: Org): Promise<unknown>;
  /** Cancels a waiting ORG_CHECK task. */
  discard(actor: Principal, taskId: string): Promise<unknown>;
}

export interface UpdateOrgInput {
  alias?: string | null;
  kind?: OrgKind | null;
  isDevHub?: boolean | null;
}

/** Prisma's unique-constraint violation, raised when two requests race for one alias. */
function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === 'P2002';
}

function aliasTaken(alias: string): ConflictError {
  return new ConflictError('ALIAS_TAKEN', `An org with alias "${alias}" is already registered`);
}

function orgNotFound(alias: string): NotFoundError {
  return new NotFoundError('ORG_NOT_FOUND', `No org with alias "${alias}"`);
}

export class OrgService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: SecretStore,
    private readonly secretWrites: SecretWrites,
    private readonly audit: AuditService,
    /** Org checks for new or rotated credentials (null: none are queued). */
    private readonly checks: OrgChecks | null = null,
  ) {}

  /** A failed check enqueue (Redis down) must not undo a registration: the check can be submitted later. */
  private async check(actor: Principal, org: Org): Promise<void> {
    await this.checks?.queue(actor, org).catch(() => undefined);
  }

  async register(actor: Principal, input: RegisterOrgInput): Promise<Org> {
    const data = parseInput(registerInput, { alias: input.alias, kind: input.kind, isDevHub: input.isDevHub ?? undefined });
    const credentials = parseCredentials(input.credentials);
    if (await this.prisma.org.findUnique({ where: { alias: data.alias }, select: { id: true } })) {
      throw aliasTaken(data.alias);
    }
    const id = randomUUID();
    const secretRef = `orgs/${id}`;
    let org: Org;
    try {
      org = await this.secretWrites.putThen(secretRef, credentialsToSecret(credentials), () =>
        this.prisma.$transaction(async (tx) => {
          const org = await tx.org.create({
            data: { id, alias: data.alias, kind: data.kind, isDevHub: data.isDevHub, instanceUrl: credentials.instanceUrl, secretRef },
          });
          await this.audit.record(tx, actor, 'org.register', 'Org', org.id, { alias: org.alias, kind: org.kind });
          await this.audit.record(tx, actor, 'org.credentials.write', 'Org', org.id, { secretStore: this.secrets.kind });
          return org;
        }),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw aliasTaken(data.alias);
      throw error;
    }
    await this.check(actor, org);
    return org;
  }

  async update(actor: Principal, alias: string, patch: UpdateOrgInput): Promise<Org> {
    const data = parseInput(
      updateInput,
      { alias: patch.alias ?? undefined, kind: patch.kind ?? undefined, isDevHub: patch.isDevHub ?? undefined },
      ['patch'],
    );
    const org = await this.requireByAlias(alias);
    // Nothing to change (every field omitted, or each as it is): nothing is written, and nothing audited.
    if (Object.entries(data).every(([key, value]) => value === undefined || org[key as keyof typeof data] === value)) return org;
    const write = () =>
      this.prisma.$transaction(async (tx) => {
        const updated = await tx.org.update({ where: { id: org.id }, data });
        // Tasks are filtered by alias; keep the org's own history under its current name.
        if (data.alias && data.alias !== org.alias) {
          await tx.task.updateMany({ where: { orgId: org.id }, data: { orgAlias: data.alias } });
        }
        await this.audit.record(tx, actor, 'org.update', 'Org', org.id, { ...data, previousAlias: org.alias });
        return updated;
      });
    try {
      return await unlessGone(write, () => orgNotFound(alias));
    } catch (error) {
      if (isUniqueViolation(error)) throw aliasTaken(data.alias ?? alias);
      throw error;
    }
  }

  async rotateCredentials(actor: Principal, alias: string, input: CredentialsInput): Promise<Org> {
    const org = await this.requireByAlias(alias);
    const credentials = parseCredentials(input);
    const write = () =>
      this.prisma.$transaction(async (tx) => {
        // New credentials have not been checked against Salesforce yet.
        const updated = await tx.org.update({ where: { id: org.id }, data: { instanceUrl: credentials.instanceUrl, status: 'UNVERIFIED', credentialsChangedAt: new Date() } });
        await this.audit.record(tx, actor, 'org.credentials.write', 'Org', org.id, { secretStore: this.secrets.kind, rotated: true });
        return updated;
      });
    // Removed meanwhile: the secret this wrote again (after the removal deleted it) goes too.
    const rotated = await this.secretWrites.putThen(org.secretRef, credentialsToSecret(credentials), () => unlessGone(write, () => orgNotFound(alias)));
    await this.check(actor, rotated);
    return rotated;
  }

  async remove(actor: Principal, alias: string): Promise<Org> {
    const org = await this.requireByAlias(alias);
    // An org check still waiting in the queue is only about this org: it goes with it (when checks can be
    // discarded here), and does not hold the removal up. Any other active task does, and then nothing is touched:
    // the checks stay too (if that task is written after the checks went, a new check is queued).
    const waitingCheck = { type: 'ORG_CHECK' as const, status: { in: [...waitingTaskStatuses] } };
    const refuseActive = async (client: Pick<PrismaClient, 'task'>) => {
      const active = await client.task.count({
        where: { orgId: org.id, status: { in: [...activeTaskStatuses] }, ...(this.checks ? { NOT: waitingCheck } : {}) },
      });
      if (active > 0) {
        throw new ConflictError('ORG_HAS_ACTIVE_TASKS', `Org "${alias}" has ${active} scheduled, queued or running task(s); cancel them first`);
      }
    };
    await refuseActive(this.prisma);
    const waitingChecks = await this.prisma.task.findMany({ where: { orgId: org.id, ...waitingCheck }, select: { id: true } });
    let discarded = 0;
    if (this.checks) for (const task of waitingChecks) if (await this.checks.discard(actor, task.id).then(() => true, () => false)) discarded += 1;
    // Of concurrent removals, the one whose delete finds the row records it and deletes the secret; the others
    // answer ORG_NOT_FOUND, like a removal that came after it.
    const deletion = await unlessGone(
      () =>
        this.prisma.$transaction(async (tx) => {
          // The org's row, locked, and its tasks counted again under the lock: a task being written for it (its
          // foreign key check holds the row) is waited for and then counted, and one written from now on waits for
          // this removal and then finds no org (ORG_NOT_FOUND). Counted only before, a task submitted in between
          // was left QUEUED without its org.
          await tx.$queryRaw`SELECT id FROM "Org" WHERE id = ${org.id}::uuid FOR UPDATE`;
          await refuseActive(tx);
          await tx.org.delete({ where: { id: org.id } });
          await this.audit.record(tx, actor, 'org.remove', 'Org', org.id, { alias: org.alias });
          return this.secretWrites.noteDeletion(tx, org.secretRef);
        }),
      () => orgNotFound(alias),
    ).catch(async (error: unknown) => {
      // Refused under the lock (a task was written for the org after the first count): the org stays, and so must
      // a check of it, now that its waiting one has been cancelled.
      if (error instanceof ConflictError && discarded > 0) await this.check(actor, org);
      throw error;
    });
    await this.secretWrites.finish(deletion);
    return org;
  }

  async findByAlias<T extends Omit<Prisma.OrgFindUniqueArgs, 'where'>>(alias: string, query?: T) {
    return this.prisma.org.findUnique({ ...(query as T), where: { alias } });
  }

  async requireByAlias(alias: string): Promise<Org> {
    const org = await this.prisma.org.findUnique({ where: { alias } });
    if (!org) throw orgNotFound(alias);
    return org;
  }

  /** Orgs by alias; `query` carries the caller's pagination and selection. */
  async list<T extends Omit<Prisma.OrgFindManyArgs, 'where' | 'orderBy'>>(query: T) {
    return this.prisma.org.findMany({ ...query, orderBy: [{ alias: 'asc' }] });
  }

  async count(): Promise<number> {
    return this.prisma.org.count();
  }
}
