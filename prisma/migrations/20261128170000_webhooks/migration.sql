-- CreateEnum
CREATE TYPE "WebhookKind" AS ENUM ('GITHUB', 'GITLAB', 'SALESFORCE', 'CI');

-- CreateEnum
CREATE TYPE "DeliveryStatus" AS ENUM ('PROCESSED', 'IGNORED', 'FAILED');

-- CreateTable
CREATE TABLE "WebhookSource" (
    "id" UUID NOT NULL,
    "kind" "WebhookKind" NOT NULL,
    "name" TEXT NOT NULL,
    "secretRef" TEXT NOT NULL,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "WebhookSource_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookRule" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "sourceId" UUID NOT NULL,
    "event" TEXT,
    "repository" TEXT,
    "ref" TEXT,
    "taskType" "TaskType" NOT NULL,
    "orgAlias" TEXT NOT NULL,
    "params" JSONB NOT NULL,
    "queue" "TaskQueue",
    "priority" INTEGER NOT NULL DEFAULT 50,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "WebhookRule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" UUID NOT NULL,
    "sourceId" UUID NOT NULL,
    "deliveryKey" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "repository" TEXT,
    "ref" TEXT,
    "status" "DeliveryStatus" NOT NULL,
    "matchedRuleIds" TEXT[],
    "taskIds" TEXT[],
    "payload" JSONB,
    "payloadTruncated" BOOLEAN NOT NULL DEFAULT false,
    "error" TEXT,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "NotificationSubscriber" (
    "id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "events" TEXT[],
    "secretRef" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdBy" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NotificationSubscriber_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "NotificationAttempt" (
    "id" UUID NOT NULL,
    "subscriberId" UUID NOT NULL,
    "notificationId" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "ok" BOOLEAN NOT NULL,
    "responseStatus" INTEGER,
    "error" TEXT,
    "durationMs" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "NotificationAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "WebhookSource_secretRef_key" ON "WebhookSource"("secretRef");

-- CreateIndex
CREATE INDEX "WebhookSource_createdAt_id_idx" ON "WebhookSource"("createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "WebhookRule_sourceId_idx" ON "WebhookRule"("sourceId");

-- CreateIndex
CREATE INDEX "WebhookDelivery_receivedAt_id_idx" ON "WebhookDelivery"("receivedAt" DESC, "id" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_sourceId_deliveryKey_key" ON "WebhookDelivery"("sourceId", "deliveryKey");

-- CreateIndex
CREATE UNIQUE INDEX "NotificationSubscriber_secretRef_key" ON "NotificationSubscriber"("secretRef");

-- CreateIndex
CREATE INDEX "NotificationAttempt_subscriberId_createdAt_idx" ON "NotificationAttempt"("subscriberId", "createdAt" DESC);

-- AddForeignKey
ALTER TABLE "WebhookRule" ADD CONSTRAINT "WebhookRule_sourceId_fkey" FOREIGN KEY ("sourceId") REFERENCES "WebhookSource"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_sourceId_fkey" FOREIGN KEY ("sourceId") REFERENCES "WebhookSource"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "NotificationAttempt" ADD CONSTRAINT "NotificationAttempt_subscriberId_fkey" FOREIGN KEY ("subscriberId") REFERENCES "NotificationSubscriber"("id") ON DELETE CASCADE ON UPDATE CASCADE;

