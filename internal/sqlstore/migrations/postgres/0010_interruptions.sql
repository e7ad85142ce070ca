-- 0010: deliveries a worker handed back because it was shutting down, not
-- because the handler failed. The broker counts every delivery; a worker
-- subtracts these from that count, so deploys in a row never turn a healthy
-- event into a dead letter. Keyed by the durable consumer and the message's
-- id (Nats-Msg-Id), pruned with the inbox.
CREATE TABLE delivery_interruptions (
    consumer   TEXT NOT NULL,
    message_id TEXT NOT NULL,
    count      INTEGER NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX delivery_interruptions_updated_at ON delivery_interruptions (updated_at);
