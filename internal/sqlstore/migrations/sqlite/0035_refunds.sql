-- 0035: refunds, as in migrations/postgres/0035_refunds.sql in SQLite's
-- types.
ALTER TABLE orders ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0);

CREATE TABLE refunds (
    id                 TEXT NOT NULL,
    restaurant_id      INTEGER NOT NULL REFERENCES restaurants (id),
    order_id           TEXT NOT NULL REFERENCES orders (id),
    payment_id         TEXT NOT NULL REFERENCES payments (id),
    charge_id          TEXT NOT NULL,
    request_key        TEXT NOT NULL CHECK (request_key <> ''),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    source             TEXT NOT NULL CHECK (source IN ('cancel', 'staff', 'api', 'provider')),
    reason             TEXT NOT NULL DEFAULT '',
    lines              TEXT NOT NULL DEFAULT '[]',
    attempt            INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    provider_key       TEXT NOT NULL UNIQUE,
    provider_refund_id TEXT NOT NULL DEFAULT '',
    failure_reason     TEXT NOT NULL DEFAULT '',
    recoveries         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    created_by         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, id),
    UNIQUE (order_id, request_key)
) STRICT;
CREATE UNIQUE INDEX refunds_provider_refund ON refunds (provider_refund_id) WHERE provider_refund_id <> '';
CREATE INDEX refunds_pending ON refunds (updated_at, id) WHERE status = 'pending';

CREATE TABLE test_provider_refunds (
    idempotency_key TEXT PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    charge_id       TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    failure         TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX test_provider_refunds_charge ON test_provider_refunds (charge_id);
