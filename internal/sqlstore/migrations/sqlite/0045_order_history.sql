-- 0045_order_history: who moved each order and when.
--
-- order_status_history gets one row per status change, written by a
-- trigger in the transaction of the UPDATE that changes orders.status, so
-- no code path (staff, payment settlement, anything added later) can
-- change a status without its row. orders.status_by carries the staff
-- member of the change into the trigger: SetOrderStatus sets it in the
-- same UPDATE; the trigger copies it and clears it, so a later change by
-- the system (settlement) reads NULL, "system". An order's creation is
-- not a row: it is orders.created_at with the first row's from_status (or
-- the current status when there is no row yet), so placing an order writes
-- nothing more than before.
ALTER TABLE orders ADD COLUMN status_by INTEGER;

CREATE TABLE order_status_history (
    id            INTEGER PRIMARY KEY,
    restaurant_id INTEGER NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status   TEXT NOT NULL,
    to_status     TEXT NOT NULL,
    user_id       INTEGER, -- the staff member; NULL: the system
    reason        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX order_status_history_order ON order_status_history (restaurant_id, order_id, id);

CREATE TRIGGER orders_status_history AFTER UPDATE OF status ON orders
WHEN NEW.status <> OLD.status
BEGIN
    INSERT INTO order_status_history (restaurant_id, order_id, from_status, to_status, user_id, reason, created_at)
    VALUES (NEW.restaurant_id, NEW.id, OLD.status, NEW.status, NEW.status_by,
        CASE WHEN NEW.status = 'cancelled' THEN NEW.cancel_reason ELSE '' END, NEW.updated_at);
    UPDATE orders SET status_by = NULL WHERE id = NEW.id AND NEW.status_by IS NOT NULL;
END;

-- No new index on orders: every order insert would pay for it. History
-- reads a date range through orders_restaurant_created (0001), an email
-- through customers (restaurant_id, email) and orders_customer, a number
-- through orders (restaurant_id, number); reports read the range the same
-- way, their lines through order_lines' primary key.
