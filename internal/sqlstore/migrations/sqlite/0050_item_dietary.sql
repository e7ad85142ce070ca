-- 0050: dietary tags per menu item ("vegan,gluten_free"): codes from
-- ladle.DietaryTags, comma-separated in that order, '' for none. A list
-- of a handful of fixed codes, read and written with the item's row, so a
-- text column rather than a join table.
ALTER TABLE items ADD COLUMN dietary TEXT NOT NULL DEFAULT '';
