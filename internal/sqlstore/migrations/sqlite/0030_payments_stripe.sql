-- 0030: real payments.
--
-- A restaurant's settings at the payment provider: its Stripe Connect
-- account, on which its charges are made (the money goes to the restaurant).
CREATE TABLE payment_accounts (
    restaurant_id  INTEGER PRIMARY KEY REFERENCES restaurants (id) ON DELETE CASCADE,
    stripe_account TEXT NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL
);

-- The built-in test provider's charges (--payment-provider test, the demo
-- and the tests), keyed by idempotency key like a real processor's, so the
-- API and worker processes and every restart see the same charges. calls
-- counts the Charge calls made with the key, repeats included.
CREATE TABLE test_charges (
    idempotency_key TEXT PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    order_id        TEXT NOT NULL DEFAULT '',
    restaurant_id   INTEGER NOT NULL DEFAULT 0,
    amount          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    declined        INTEGER NOT NULL,
    calls           INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL
);
CREATE INDEX test_charges_order ON test_charges (order_id);

-- Disputes find their payment by the provider's charge id.
CREATE INDEX payments_charge ON payments (charge_id) WHERE charge_id <> '';
