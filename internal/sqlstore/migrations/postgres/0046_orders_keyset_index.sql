-- 0046_orders_keyset_index: orders_restaurant_created gains id as its last
-- column, in the order every list of orders is read (created_at DESC, id
-- DESC). The board, the history and the CSV export then read a page
-- straight from the index, from a keyset cursor (created_at, id), instead of
-- sorting the whole date range on every page. Same name, one index as
-- before: an order insert pays for nothing more.
DROP INDEX orders_restaurant_created;
CREATE INDEX orders_restaurant_created ON orders (restaurant_id, created_at DESC, id DESC);
