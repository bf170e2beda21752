-- AlterTable
ALTER TABLE "Artifact" ADD COLUMN     "lastUsedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- Existing artifacts were last used, as far as anyone knows, when they were created.
UPDATE "Artifact" SET "lastUsedAt" = "createdAt";

-- CreateIndex
CREATE INDEX "Artifact_lastUsedAt_idx" ON "Artifact"("lastUsedAt");
