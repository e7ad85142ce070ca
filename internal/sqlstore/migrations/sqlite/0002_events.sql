-- 0002: the inbox, emails and dead letters, as in
-- migrations/postgres/0002_events.sql in SQLite's types. SQLite has no
-- LISTEN/NOTIFY and a single writer process: relays are woken in-process
-- (Store.OnEventsCommitted) and poll as a fallback.

CREATE TABLE inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX inbox_processed_at ON inbox (processed_at);

CREATE TABLE emails (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id),
    consumer      TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    order_id      TEXT NOT NULL DEFAULT '',
    from_addr     TEXT NOT NULL,
    to_addr       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    text_body     TEXT NOT NULL,
    html_body     TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    error         TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    transport     TEXT NOT NULL DEFAULT '',
    lease_until   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    sent_at       INTEGER,
    UNIQUE (consumer, event_id)
) STRICT;
CREATE INDEX emails_restaurant ON emails (restaurant_id, id DESC);
CREATE INDEX emails_order ON emails (order_id) WHERE order_id <> '';

CREATE TABLE dead_letters (
    id              INTEGER PRIMARY KEY,
    restaurant_id   INTEGER NOT NULL,
    consumer        TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    event           TEXT NOT NULL CHECK (json_valid(event)),
    error           TEXT NOT NULL,
    deliveries      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    replayed_at     INTEGER,
    replay_event_id TEXT
) STRICT;
CREATE UNIQUE INDEX dead_letters_open ON dead_letters (consumer, event_id) WHERE replayed_at IS NULL;
CREATE INDEX dead_letters_restaurant ON dead_letters (restaurant_id, id DESC);
