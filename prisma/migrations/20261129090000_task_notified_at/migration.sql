-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "notifiedAt" TIMESTAMP(3);

-- Tasks that ended before this release had their notifications queued then (or lost): none is sent again.
UPDATE "Task" SET "notifiedAt" = COALESCE("finishedAt", CURRENT_TIMESTAMP) WHERE "status" IN ('SUCCEEDED', 'FAILED', 'CANCELLED');

-- CreateIndex
CREATE INDEX "Task_notifiedAt_status_idx" ON "Task"("notifiedAt", "status");
