-- 0010: deliveries handed back at shutdown, as in
-- migrations/postgres/0010_interruptions.sql in SQLite's types.
CREATE TABLE delivery_interruptions (
    consumer   TEXT NOT NULL,
    message_id TEXT NOT NULL,
    count      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX delivery_interruptions_updated_at ON delivery_interruptions (updated_at);
