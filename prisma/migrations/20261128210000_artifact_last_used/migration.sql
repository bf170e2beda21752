-- AlterTable
ALTER TABLE "Artifact" ADD COLUMN     "lastUsedAt" TIMESTAMP(3);
