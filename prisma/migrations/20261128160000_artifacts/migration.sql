-- CreateEnum
CREATE TYPE "ArtifactSource" AS ENUM ('UPLOAD', 'RETRIEVE');

-- CreateTable
CREATE TABLE "Artifact" (
    "id" UUID NOT NULL,
    "sha256" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "fileName" TEXT NOT NULL,
    "source" "ArtifactSource" NOT NULL,
    "createdBy" TEXT NOT NULL,
    "taskId" UUID,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Artifact_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Artifact_sha256_idx" ON "Artifact"("sha256");

-- CreateIndex
CREATE INDEX "Artifact_createdAt_id_idx" ON "Artifact"("createdAt" DESC, "id" DESC);

