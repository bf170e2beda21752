-- A delivery's verified signature: a copy of a signed request sent under another delivery id (ids are not signed)
-- is the delivery that first carried it, for as long as the delivery log keeps that delivery.
-- Built without CONCURRENTLY (Prisma runs a migration in a transaction): on a large WebhookDelivery table, expect
-- delivery writes to wait while it builds (docs/production.md, "Upgrades").

-- AlterTable
ALTER TABLE "WebhookDelivery" ADD COLUMN     "signature" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_sourceId_signature_key" ON "WebhookDelivery"("sourceId", "signature");
