-- An org's task history, newest first (tasks(filter: {org}) by alias, Org.tasks by id): without these, a page
-- walked the whole createdAt index, or sorted all of the org's tasks, for every request.
-- Built without CONCURRENTLY (Prisma runs a migration in a transaction): on a large Task table, expect writes to
-- the table to wait while they build (docs/production.md, "Upgrades").

-- CreateIndex
CREATE INDEX "Task_orgAlias_createdAt_id_idx" ON "Task"("orgAlias", "createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "Task_orgId_createdAt_id_idx" ON "Task"("orgId", "createdAt" DESC, "id" DESC);
