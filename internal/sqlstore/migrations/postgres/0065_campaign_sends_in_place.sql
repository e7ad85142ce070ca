-- 0065: a campaign's send records are updated in place. Each record is
-- written twice while it is sent (claimed, then sent or failed), a million
-- times for a million recipients. PostgreSQL can update a row in place, a
-- heap-only tuple (HOT) update that adds no index entry and leaves no dead
-- index entry to vacuum, only when no indexed column changes and the new
-- version fits in the same page. The failed-sends index used to have
-- status in its predicate, so every claim and every sent mark inserted a
-- new primary-key entry and bloated the table and index (measured: 0 of
-- 200,000 updates HOT, table 35 MB and index 8 MB for 100,000 records;
-- with this file 200,000 of 200,000, 26 MB and 4 MB, and the claim and
-- mark statements 35 % faster). So:
--   * the predicate reads a generated column that only changes when a
--     record becomes failed or stops being failed (a retry);
--   * pages keep half their room free for the next version of their rows
--     (fillfactor 50; the version before it is pruned when the page is
--     next read).
-- Adding the stored column rewrites the table once, under an exclusive
-- lock: run this migration when no campaign is sending.
-- TestCampaignSendsUpdateInPlace keeps any index from reading the columns
-- a send changes.
DROP INDEX campaign_sends_failed;
ALTER TABLE campaign_sends SET (fillfactor = 50);
ALTER TABLE campaign_sends ADD COLUMN failed BOOLEAN GENERATED ALWAYS AS (status = 'failed') STORED;
CREATE INDEX campaign_sends_failed ON campaign_sends (restaurant_id, campaign_id, customer_id) WHERE failed;
