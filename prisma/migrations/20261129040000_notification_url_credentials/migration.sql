-- Notification subscriber URLs with a user name or password: refused since they are given, but earlier ones are
-- stored with them. fetch, which delivered then, refused such URLs, so none of these subscribers was ever
-- notified. Their URLs lose the user name and password, and they are disabled, so they stay silent as before
-- (create them again to be notified). The password also leaves the audit entries and the attempts' errors that
-- quote the URL; there "//…@" marks where it was. As in the application, the user part runs to the last "@"
-- before the path, so a password holding an "@" goes whole.

UPDATE "NotificationSubscriber"
SET "url" = regexp_replace("url", '^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#[:space:]]*@', '\1'), "enabled" = false
WHERE "url" ~ '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#[:space:]]*@';

UPDATE "NotificationAttempt"
SET "error" = regexp_replace("error", '//[^/?#[:space:]]*@', '//…@', 'g')
WHERE "error" ~ '//[^/?#[:space:]]*@';

UPDATE "AuditEntry"
SET "details" = jsonb_set("details", '{url}', to_jsonb(regexp_replace("details" ->> 'url', '//[^/?#[:space:]]*@', '//…@', 'g')))
WHERE "action" LIKE 'notification.subscriber.%'
  AND jsonb_typeof("details" -> 'url') = 'string'
  AND "details" ->> 'url' ~ '//[^/?#[:space:]]*@';
