-- rotateWebhookSecret(previousSecretValidForSeconds:): until when a source's secret from before its last rotation
-- is still accepted. The secret itself stays in the secret store, beside the current one.

-- AlterTable
ALTER TABLE "WebhookSource" ADD COLUMN     "previousSecretExpiresAt" TIMESTAMP(3);
