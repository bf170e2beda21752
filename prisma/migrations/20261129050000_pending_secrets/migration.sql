-- CreateTable
CREATE TABLE "PendingSecret" (
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PendingSecret_pkey" PRIMARY KEY ("name")
);
