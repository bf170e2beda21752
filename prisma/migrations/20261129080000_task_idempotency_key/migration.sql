-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "idempotencyKey" TEXT,
ADD COLUMN     "idempotencyScope" TEXT,
ADD COLUMN     "requestDigest" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "Task_idempotencyScope_idempotencyKey_key" ON "Task"("idempotencyScope", "idempotencyKey");
