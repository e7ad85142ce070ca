-- 0040: opening hours, closures, the pause switch and pickup-slot capacity.
--
-- restaurant_hours holds one restaurant's schedule as a JSON document
-- (ladle.Hours: weekly ranges, closures, slot length and caps, preparation
-- time), validated in Go; no row means open around the clock, uncapped.
-- paused_until is its own column: the board's pause switch never rewrites
-- the document the hours page edits.
CREATE TABLE restaurant_hours (
    restaurant_id BIGINT PRIMARY KEY REFERENCES restaurants (id) ON DELETE CASCADE,
    doc           TEXT NOT NULL DEFAULT '',
    paused_until  TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- What each pickup slot has taken. An order takes its slot with one
-- conditional upsert (orders + 1 only while under the cap), inside the
-- order's transaction: on PostgreSQL the row lock serializes the takers of
-- one slot, and each re-checks the cap on the latest row version.
CREATE TABLE pickup_slot_usage (
    restaurant_id BIGINT NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    slot_start    TIMESTAMPTZ NOT NULL,
    orders        INTEGER NOT NULL DEFAULT 0 CHECK (orders >= 0),
    items         INTEGER NOT NULL DEFAULT 0 CHECK (items >= 0),
    PRIMARY KEY (restaurant_id, slot_start)
);

-- The slot an order counts against (NULL: none, slots uncapped), how many
-- items it counted, and an ASAP order's ready estimate.
ALTER TABLE orders ADD COLUMN slot_start TIMESTAMPTZ;
ALTER TABLE orders ADD COLUMN slot_items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN ready_estimate TIMESTAMPTZ;
