-- 0005_order_number_sequences: PostgreSQL moves order numbers to one
-- sequence per restaurant. SQLite has a single writer, so the counter on
-- the restaurant row (restaurants.next_order_number) queues nothing and
-- stays; this migration only keeps the two folders' numbers aligned.
SELECT 1;
