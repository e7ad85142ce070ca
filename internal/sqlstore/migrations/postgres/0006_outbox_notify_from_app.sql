-- 0006_outbox_notify_from_app: the outbox trigger's pg_notify ran inside
-- every transaction that appended an event, and NOTIFY takes a
-- database-wide lock at commit, so those commits were serialized. The
-- store now notifies from the application after such commits, one NOTIFY
-- for all the commits of a few milliseconds (notify.go).
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION ladle_outbox_notify();
