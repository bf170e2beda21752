-- CreateTable
CREATE TABLE "PendingSecret" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PendingSecret_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "PendingSecret_name_idx" ON "PendingSecret"("name");

-- CreateIndex
CREATE INDEX "PendingSecret_createdAt_idx" ON "PendingSecret"("createdAt");
