import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../errors.js';
import { activeTaskStatuses } from '../tasks/task-states.js';
import { parseInput } from '../validation.js';
import { credentialsToSecret, parseCredentials } from './org-credentials.js';
const orgKinds = ['PRODUCTION', 'SANDBOX', 'SCRATCH', 'DEVELOPER'];
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
/** Prisma's unique-constraint violation, raised when two requests race for one alias. */
function isUniqueViolation(error) {
    return error.code === 'P2002';
}
function aliasTaken(alias) {
    return new ConflictError('ALIAS_TAKEN', `An org with alias "${alias}" is already registered`);
}
export class OrgService {
    prisma;
    secrets;
    audit;
    checks;
    constructor(prisma, secrets, audit, 
    /** Org checks for new or rotated credentials (null: none are queued). */
    checks = null) {
        this.prisma = prisma;
        this.secrets = secrets;
        this.audit = audit;
        this.checks = checks;
    }
    /** A failed check enqueue (Redis down) must not undo a registration: the check can be submitted later. */
    async check(actor, org) {
        await this.checks?.queue(actor, org).catch(() => undefined);
    }
    async register(actor, input) {
        const data = parseInput(registerInput, { alias: input.alias, kind: input.kind, isDevHub: input.isDevHub ?? undefined });
        const credentials = parseCredentials(input.credentials);
        if (await this.prisma.org.findUnique({ where: { alias: data.alias }, select: { id: true } })) {
            throw aliasTaken(data.alias);
        }
        const id = randomUUID();
        const secretRef = `orgs/${id}`;
        // The secret is written first: an org row must never point at credentials that do not exist. If the
        // row then fails, the orphaned secret is removed again.
        await this.secrets.put(secretRef, credentialsToSecret(credentials));
        let org;
        try {
            org = await this.prisma.$transaction(async (tx) => {
                const org = await tx.org.create({
                    data: { id, alias: data.alias, kind: data.kind, isDevHub: data.isDevHub, instanceUrl: credentials.instanceUrl, secretRef },
                });
                await this.audit.record(tx, actor, 'org.register', 'Org', org.id, { alias: org.alias, kind: org.kind });
                await this.audit.record(tx, actor, 'org.credentials.write', 'Org', org.id, { secretStore: this.secrets.kind });
                return org;
            });
        }
        catch (error) {
            await this.secrets.delete(secretRef).catch(() => undefined);
            if (isUniqueViolation(error))
                throw aliasTaken(data.alias);
            throw error;
        }
        await this.check(actor, org);
        return org;
    }
    async update(actor, alias, patch) {
        const data = parseInput(updateInput, { alias: patch.alias ?? undefined, kind: patch.kind ?? undefined, isDevHub: patch.isDevHub ?? undefined }, ['patch']);
        const org = await this.requireByAlias(alias);
        try {
            return await this.prisma.$transaction(async (tx) => {
                const updated = await tx.org.update({ where: { id: org.id }, data });
                // Tasks are filtered by alias; keep the org's own history under its current name.
                if (data.alias && data.alias !== org.alias) {
                    await tx.task.updateMany({ where: { orgId: org.id }, data: { orgAlias: data.alias } });
                }
                await this.audit.record(tx, actor, 'org.update', 'Org', org.id, { ...data, previousAlias: org.alias });
                return updated;
            });
        }
        catch (error) {
            if (isUniqueViolation(error))
                throw aliasTaken(data.alias ?? alias);
            throw error;
        }
    }
    async rotateCredentials(actor, alias, input) {
        const org = await this.requireByAlias(alias);
        const credentials = parseCredentials(input);
        await this.secrets.put(org.secretRef, credentialsToSecret(credentials));
        const rotated = await this.prisma.$transaction(async (tx) => {
            // New credentials have not been checked against Salesforce yet.
            const updated = await tx.org.update({
                where: { id: org.id },
                data: { instanceUrl: credentials.instanceUrl, status: 'UNVERIFIED' },
            });
            await this.audit.record(tx, actor, 'org.credentials.write', 'Org', org.id, { secretStore: this.secrets.kind, rotated: true });
            return updated;
        });
        await this.check(actor, rotated);
        return rotated;
    }
    async remove(actor, alias) {
        const org = await this.requireByAlias(alias);
        // An org check still waiting in the queue is only about this org: it goes with it.
        const waitingChecks = await this.prisma.task.findMany({
            where: { orgId: org.id, type: 'ORG_CHECK', status: { in: ['QUEUED', 'SCHEDULED'] } },
            select: { id: true },
        });
        if (this.checks)
            for (const task of waitingChecks)
                await this.checks.discard(actor, task.id).catch(() => undefined);
        const active = await this.prisma.task.count({ where: { orgId: org.id, status: { in: [...activeTaskStatuses] } } });
        if (active > 0) {
            throw new ConflictError('ORG_HAS_ACTIVE_TASKS', `Org "${alias}" has ${active} scheduled, queued or running task(s); cancel them first`);
        }
        await this.prisma.$transaction(async (tx) => {
            await tx.org.delete({ where: { id: org.id } });
            await this.audit.record(tx, actor, 'org.remove', 'Org', org.id, { alias: org.alias });
        });
        await this.secrets.delete(org.secretRef);
        return org;
    }
    async findByAlias(alias, query) {
        return this.prisma.org.findUnique({ ...query, where: { alias } });
    }
    async requireByAlias(alias) {
        const org = await this.prisma.org.findUnique({ where: { alias } });
        if (!org)
            throw new NotFoundError('ORG_NOT_FOUND', `No org with alias "${alias}"`);
        return org;
    }
    /** Orgs by alias; `query` carries the caller's pagination and selection. */
    async list(query) {
        return this.prisma.org.findMany({ ...query, orderBy: [{ alias: 'asc' }] });
    }
    async count() {
        return this.prisma.org.count();
    }
}
