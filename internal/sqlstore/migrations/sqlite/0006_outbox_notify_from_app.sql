-- 0006_outbox_notify_from_app: PostgreSQL only (its outbox trigger goes);
-- this keeps the two folders' numbers aligned.
SELECT 1;
