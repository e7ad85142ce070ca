-- 0011: a version per menu item for optimistic concurrency. Every change to
-- an item's row adds one; an edit names the version it was made from and is
-- refused (409 item_changed) if the row moved on meanwhile, so two staff
-- editing the same item, or an image upload racing a form, never silently
-- undo each other.
ALTER TABLE items ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
