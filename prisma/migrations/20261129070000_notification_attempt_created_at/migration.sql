-- CreateIndex
CREATE INDEX "NotificationAttempt_createdAt_idx" ON "NotificationAttempt"("createdAt");
