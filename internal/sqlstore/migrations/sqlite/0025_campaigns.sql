-- 0025: email campaigns, as in migrations/postgres/0025_campaigns.sql in
-- SQLite's types.

ALTER TABLE customers ADD COLUMN consent_source TEXT NOT NULL DEFAULT '';

CREATE TABLE suppressions (
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    reason        TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'hard_bounce', 'complaint')),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, email)
) STRICT, WITHOUT ROWID;

CREATE TABLE campaigns (
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    html_body     TEXT NOT NULL,
    text_body     TEXT NOT NULL,
    audience      TEXT NOT NULL CHECK (json_valid(audience)),
    status        TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'done', 'cancelled')),
    generation    INTEGER NOT NULL DEFAULT 0,
    enumerated    INTEGER NOT NULL DEFAULT 0 CHECK (enumerated IN (0, 1)),
    cursor        INTEGER NOT NULL DEFAULT 0,
    total         INTEGER NOT NULL DEFAULT 0,
    sent          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    scheduled_at  INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, id)
) STRICT;
CREATE INDEX campaigns_due ON campaigns (scheduled_at) WHERE status = 'scheduled';

CREATE TABLE campaign_sends (
    restaurant_id INTEGER NOT NULL,
    campaign_id   TEXT NOT NULL,
    customer_id   INTEGER NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    reason        TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    due_at        INTEGER NOT NULL DEFAULT 0, -- pending: not before; sending: lease end
    sent_at       INTEGER,
    PRIMARY KEY (restaurant_id, campaign_id, customer_id),
    FOREIGN KEY (restaurant_id, campaign_id) REFERENCES campaigns (restaurant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX campaign_sends_failed ON campaign_sends (restaurant_id, campaign_id, customer_id) WHERE status = 'failed';

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL DEFAULT '',
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    UNIQUE (restaurant_id, id)
) STRICT;
