-- AlterTable (a constant default: no table rewrite). Tasks that ended before this release are not pending, nor are
-- those that processes of the earlier release end while it rolls out (they queue their notifications themselves).
ALTER TABLE "Task" ADD COLUMN     "notificationsPending" BOOLEAN NOT NULL DEFAULT false;

-- CreateIndex
CREATE INDEX "Task_notificationsPending_finishedAt_idx" ON "Task"("notificationsPending", "finishedAt");
