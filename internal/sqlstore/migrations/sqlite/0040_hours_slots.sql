-- 0040: opening hours, closures, the pause switch and pickup-slot capacity.
-- The same schema as migrations/postgres/0040_hours_slots.sql in SQLite's
-- types (times are INTEGER microseconds, UTC).
CREATE TABLE restaurant_hours (
    restaurant_id INTEGER PRIMARY KEY REFERENCES restaurants (id) ON DELETE CASCADE,
    doc           TEXT NOT NULL DEFAULT '',
    paused_until  INTEGER,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE pickup_slot_usage (
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    slot_start    INTEGER NOT NULL,
    orders        INTEGER NOT NULL DEFAULT 0 CHECK (orders >= 0),
    items         INTEGER NOT NULL DEFAULT 0 CHECK (items >= 0),
    PRIMARY KEY (restaurant_id, slot_start)
) STRICT;

ALTER TABLE orders ADD COLUMN slot_start INTEGER;
ALTER TABLE orders ADD COLUMN slot_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN ready_estimate INTEGER;
