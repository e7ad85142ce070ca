-- 0065: the failed-sends index reads a generated failed column, as in
-- migrations/postgres/0065_campaign_sends_in_place.sql, where it lets
-- PostgreSQL update send records in place. SQLite has no such constraint;
-- the column is here so that both dialects run the same queries.
DROP INDEX campaign_sends_failed;
ALTER TABLE campaign_sends ADD COLUMN failed INTEGER GENERATED ALWAYS AS (status = 'failed') VIRTUAL;
CREATE INDEX campaign_sends_failed ON campaign_sends (restaurant_id, campaign_id, customer_id) WHERE failed;
