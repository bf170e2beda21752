-- AlterEnum
ALTER TYPE "TaskType" ADD VALUE 'DIAGNOSTIC';

-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "backoffMs" INTEGER NOT NULL DEFAULT 5000,
ADD COLUMN     "cancelRequestedAt" TIMESTAMP(3),
ADD COLUMN     "childPid" INTEGER,
ADD COLUMN     "scheduleId" UUID,
ADD COLUMN     "timeoutMs" INTEGER,
ADD COLUMN     "workerId" TEXT;

-- CreateTable
CREATE TABLE "Schedule" (
    "id" UUID NOT NULL,
    "type" "TaskType" NOT NULL,
    "orgId" UUID NOT NULL,
    "input" JSONB NOT NULL,
    "cron" TEXT NOT NULL,
    "timezone" TEXT NOT NULL,
    "queue" "TaskQueue" NOT NULL,
    "priority" INTEGER NOT NULL,
    "maxAttempts" INTEGER NOT NULL,
    "backoffMs" INTEGER NOT NULL,
    "timeoutMs" INTEGER,
    "createdBy" TEXT NOT NULL,
    "lastFiredAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Schedule_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Schedule_createdAt_id_idx" ON "Schedule"("createdAt" DESC, "id" DESC);

-- AddForeignKey
ALTER TABLE "Schedule" ADD CONSTRAINT "Schedule_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE CASCADE ON UPDATE CASCADE;

