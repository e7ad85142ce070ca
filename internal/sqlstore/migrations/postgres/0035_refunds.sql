-- 0035: refunds of card payments (refund.go), and the test provider's own
-- record of the refunds it made, so its exactly-once holds across processes.
--
-- A refund is one row per (order, request key): "cancel" for the full
-- refund a cancellation makes, the staff form's nonce or the API's
-- Idempotency-Key otherwise, so a double click or a retried request finds
-- the row instead of making a second refund. Each attempt has its own
-- processor key (provider_key); a staff retry after a failure is a new
-- attempt with a new key.
ALTER TABLE orders ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0);

CREATE TABLE refunds (
    id                 TEXT NOT NULL,
    restaurant_id      BIGINT NOT NULL REFERENCES restaurants (id),
    order_id           TEXT NOT NULL REFERENCES orders (id),
    payment_id         TEXT NOT NULL REFERENCES payments (id),
    charge_id          TEXT NOT NULL,
    request_key        TEXT NOT NULL CHECK (request_key <> ''),
    amount             BIGINT NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    source             TEXT NOT NULL CHECK (source IN ('cancel', 'staff', 'api', 'provider')),
    reason             TEXT NOT NULL DEFAULT '',
    lines              JSONB NOT NULL DEFAULT '[]',
    attempt            INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    provider_key       TEXT NOT NULL UNIQUE,
    provider_refund_id TEXT NOT NULL DEFAULT '',
    failure_reason     TEXT NOT NULL DEFAULT '',
    recoveries         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ,
    created_by         BIGINT NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (restaurant_id, id),
    UNIQUE (order_id, request_key)
);
CREATE UNIQUE INDEX refunds_provider_refund ON refunds (provider_refund_id) WHERE provider_refund_id <> '';
-- The recovery loop's queue: refunds whose outcome is not known.
CREATE INDEX refunds_pending ON refunds (updated_at, id) WHERE status = 'pending';

-- The built-in test provider's refunds, by idempotency key: what a real
-- processor keeps on its side.
CREATE TABLE test_provider_refunds (
    idempotency_key TEXT PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    charge_id       TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    failure         TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX test_provider_refunds_charge ON test_provider_refunds (charge_id);
