-- AlterTable
ALTER TABLE "WebhookRule" ADD COLUMN     "orgId" UUID;

-- Backfill: each existing rule belongs to the org that has its alias now. A rule whose alias names no org keeps
-- a null orgId and fails its deliveries, as it already did.
UPDATE "WebhookRule" SET "orgId" = "Org"."id" FROM "Org" WHERE "Org"."alias" = "WebhookRule"."orgAlias";

-- AddForeignKey
ALTER TABLE "WebhookRule" ADD CONSTRAINT "WebhookRule_orgId_fkey" FOREIGN KEY ("orgId") REFERENCES "Org"("id") ON DELETE SET NULL ON UPDATE CASCADE;

