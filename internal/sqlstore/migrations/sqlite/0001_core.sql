-- 0001_core: tenants, staff, menus, customers, orders, payments, coupons,
-- idempotency keys, duplicate fingerprints and the outbox.
--
-- The same schema as migrations/postgres/0001_core.sql in SQLite's types.
-- Tables are STRICT, so a value of the wrong type is an error, not a silent
-- conversion. Conventions: ids are INTEGER rowids except orders, payments
-- and events (UUIDv7 text); money is INTEGER minor units; booleans are 0/1;
-- times are INTEGER microseconds since the Unix epoch, UTC (the driver binds
-- time.Time that way, see dialect.go), which compare correctly in SQL; JSON
-- documents are TEXT.
--
-- Tenant integrity is held by the schema: rows that point at another row of
-- the same restaurant use composite foreign keys (restaurant_id, id).

CREATE TABLE restaurants (
    id                INTEGER PRIMARY KEY,
    slug              TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 2 AND 64 AND slug NOT GLOB '*[^a-z0-9-]*'),
    name              TEXT NOT NULL CHECK (name <> ''),
    currency          TEXT NOT NULL CHECK (currency GLOB '[A-Z][A-Z][A-Z]'),
    tax_rate_bp       INTEGER NOT NULL CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    time_zone         TEXT NOT NULL,
    phone             TEXT NOT NULL DEFAULT '',
    address           TEXT NOT NULL DEFAULT '',
    menu_version      INTEGER NOT NULL DEFAULT 1,
    next_order_number INTEGER NOT NULL DEFAULT 1 CHECK (next_order_number >= 1),
    created_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX restaurants_name ON restaurants (name);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'staff')),
    PRIMARY KEY (user_id, restaurant_id)
) STRICT;
CREATE INDEX memberships_restaurant ON memberships (restaurant_id);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE categories (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL CHECK (name <> ''),
    position      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (restaurant_id, id)
) STRICT;
CREATE INDEX categories_restaurant ON categories (restaurant_id, position, id);

CREATE TABLE items (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    category_id   INTEGER NOT NULL,
    name          TEXT NOT NULL CHECK (name <> ''),
    description   TEXT NOT NULL DEFAULT '',
    price         INTEGER NOT NULL CHECK (price >= 0),
    available     INTEGER NOT NULL DEFAULT 1 CHECK (available IN (0, 1)),
    image_key     TEXT NOT NULL DEFAULT '',
    position      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (restaurant_id, id),
    -- RESTRICT: a category with items cannot be deleted (category_not_empty).
    FOREIGN KEY (restaurant_id, category_id) REFERENCES categories (restaurant_id, id) ON DELETE RESTRICT
) STRICT;
CREATE INDEX items_category ON items (restaurant_id, category_id, position, id);

CREATE TABLE modifier_groups (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL CHECK (name <> ''),
    min_choices   INTEGER NOT NULL DEFAULT 0 CHECK (min_choices >= 0),
    -- 0 means no upper bound.
    max_choices   INTEGER NOT NULL DEFAULT 0 CHECK (max_choices = 0 OR max_choices >= min_choices),
    position      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (restaurant_id, id)
) STRICT;
CREATE INDEX modifier_groups_restaurant ON modifier_groups (restaurant_id, position, id);

CREATE TABLE modifiers (
    id       INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES modifier_groups (id) ON DELETE CASCADE,
    name     TEXT NOT NULL CHECK (name <> ''),
    price    INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0),
    position INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX modifiers_group ON modifiers (group_id, position, id);

CREATE TABLE item_modifier_groups (
    restaurant_id INTEGER NOT NULL,
    item_id       INTEGER NOT NULL,
    group_id      INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (item_id, group_id),
    FOREIGN KEY (restaurant_id, item_id) REFERENCES items (restaurant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (restaurant_id, group_id) REFERENCES modifier_groups (restaurant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX item_modifier_groups_restaurant ON item_modifier_groups (restaurant_id, item_id, position);
CREATE INDEX item_modifier_groups_group ON item_modifier_groups (restaurant_id, group_id);

CREATE TABLE customers (
    id                  INTEGER PRIMARY KEY,
    restaurant_id       INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    email               TEXT NOT NULL CHECK (email = lower(email) AND email <> ''),
    name                TEXT NOT NULL,
    phone               TEXT NOT NULL DEFAULT '',
    marketing_opt_in    INTEGER NOT NULL DEFAULT 0 CHECK (marketing_opt_in IN (0, 1)),
    marketing_opt_in_at INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (restaurant_id, email),
    UNIQUE (restaurant_id, id)
) STRICT;

CREATE TABLE orders (
    id               TEXT PRIMARY KEY,
    restaurant_id    INTEGER NOT NULL REFERENCES restaurants (id),
    -- NULL only inside the creating transaction: the number is taken last,
    -- just before commit (see orders.go).
    number           INTEGER CHECK (number >= 1),
    status           TEXT NOT NULL CHECK (status IN ('pending_payment', 'payment_failed', 'placed',
                         'accepted', 'preparing', 'ready', 'completed', 'cancelled')),
    customer_id      INTEGER NOT NULL,
    customer_name    TEXT NOT NULL,
    customer_email   TEXT NOT NULL,
    customer_phone   TEXT NOT NULL DEFAULT '',
    fulfillment_type TEXT NOT NULL CHECK (fulfillment_type IN ('pickup')),
    fulfillment_time INTEGER,
    subtotal         INTEGER NOT NULL CHECK (subtotal >= 0),
    discount         INTEGER NOT NULL CHECK (discount >= 0 AND discount <= subtotal),
    tax              INTEGER NOT NULL CHECK (tax >= 0),
    tip              INTEGER NOT NULL CHECK (tip >= 0),
    total            INTEGER NOT NULL CHECK (total >= 0),
    currency         TEXT NOT NULL,
    coupon_code      TEXT NOT NULL DEFAULT '',
    fingerprint      TEXT NOT NULL DEFAULT '',
    payment_method   TEXT NOT NULL CHECK (payment_method IN ('card', 'pay_at_pickup')),
    payment_status   TEXT NOT NULL CHECK (payment_status IN ('pending', 'captured', 'declined', 'due_at_pickup')),
    cancel_reason    TEXT NOT NULL DEFAULT '',
    marketing_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (marketing_opt_in IN (0, 1)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (restaurant_id, number),
    FOREIGN KEY (restaurant_id, customer_id) REFERENCES customers (restaurant_id, id)
) STRICT;
CREATE INDEX orders_restaurant_created ON orders (restaurant_id, created_at DESC);
CREATE INDEX orders_customer ON orders (customer_id);

CREATE TABLE order_lines (
    order_id   TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    item_id    INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    line_total INTEGER NOT NULL CHECK (line_total >= 0),
    line       TEXT NOT NULL CHECK (json_valid(line)),
    PRIMARY KEY (order_id, position)
) STRICT;

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    method          TEXT NOT NULL CHECK (method IN ('card', 'pay_at_pickup')),
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'captured', 'declined', 'due_at_pickup')),
    token           TEXT NOT NULL DEFAULT '',
    charge_id       TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL UNIQUE,
    failure_reason  TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_order ON payments (order_id, created_at);
CREATE INDEX payments_pending ON payments (created_at, id) WHERE status = 'pending';

CREATE TABLE coupons (
    id                 INTEGER PRIMARY KEY,
    restaurant_id      INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    code               TEXT NOT NULL CHECK (code = upper(code) AND code <> ''),
    kind               TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value              INTEGER NOT NULL CHECK (value >= 0 AND (kind <> 'percent' OR value BETWEEN 1 AND 100)),
    min_subtotal       INTEGER NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    valid_from         INTEGER,
    valid_until        INTEGER,
    max_uses           INTEGER NOT NULL DEFAULT 0 CHECK (max_uses >= 0),
    per_customer_limit INTEGER NOT NULL DEFAULT 0 CHECK (per_customer_limit >= 0),
    uses               INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses = 0 OR uses <= max_uses)),
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at         INTEGER NOT NULL,
    UNIQUE (restaurant_id, code)
) STRICT;

CREATE TABLE coupon_redemptions (
    order_id    TEXT PRIMARY KEY REFERENCES orders (id),
    coupon_id   INTEGER NOT NULL REFERENCES coupons (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    amount      INTEGER NOT NULL CHECK (amount >= 0),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX coupon_redemptions_coupon ON coupon_redemptions (coupon_id, created_at);

CREATE TABLE coupon_customer_uses (
    coupon_id   INTEGER NOT NULL REFERENCES coupons (id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    uses        INTEGER NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (coupon_id, customer_id)
) STRICT;

CREATE TABLE idempotency_keys (
    restaurant_id   INTEGER NOT NULL REFERENCES restaurants (id) ON DELETE CASCADE,
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    locked_at       INTEGER,
    order_id        TEXT,
    response_status INTEGER NOT NULL DEFAULT 0,
    response_body   BLOB,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, key)
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE order_fingerprints (
    restaurant_id INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (restaurant_id, fingerprint)
) STRICT;
CREATE INDEX order_fingerprints_created ON order_fingerprints (created_at);

CREATE TABLE outbox (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    restaurant_id INTEGER NOT NULL,
    aggregate_id  TEXT NOT NULL,
    payload       TEXT NOT NULL CHECK (json_valid(payload)),
    created_at    INTEGER NOT NULL,
    published_at  INTEGER
) STRICT;
CREATE INDEX outbox_unpublished ON outbox (created_at, id) WHERE published_at IS NULL;
