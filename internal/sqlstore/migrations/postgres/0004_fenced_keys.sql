-- 0004_fenced_keys: idempotency keys are fenced (every claim increments
-- lock_version, every write under a claim checks it) and record which
-- process holds them, so a restarted process can release its own.
ALTER TABLE idempotency_keys ADD COLUMN lock_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN boot TEXT NOT NULL DEFAULT '';
CREATE INDEX idempotency_keys_holder ON idempotency_keys (holder) WHERE locked_at IS NOT NULL;

-- Payment recovery: attempts are spread (next_attempt_at) and given up
-- after the provider's key lifetime, with the order flagged for staff.
ALTER TABLE payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN next_attempt_at TIMESTAMPTZ;
ALTER TABLE payments ADD COLUMN given_up_at TIMESTAMPTZ;
CREATE INDEX payments_recovery ON payments (next_attempt_at) WHERE status = 'pending' AND given_up_at IS NULL;
ALTER TABLE orders ADD COLUMN attention TEXT NOT NULL DEFAULT '';
