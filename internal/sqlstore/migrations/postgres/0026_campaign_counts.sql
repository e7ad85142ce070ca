-- 0026: a campaign's sent/failed/skipped counts in shards. One counts row
-- per campaign updated by every chunk's outcome was a lock queue: each
-- worker's transaction held that row until its commit's fsync, and the
-- workers took turns (measured: ~280 emails/s on PostgreSQL with 8
-- workers, all waiting on Lock:tuple). A chunk now adds to one of 16
-- shards picked at random; reads add the shards to the campaign's own
-- columns (which keep adjustments such as a bulk retry).
CREATE TABLE campaign_counts (
    restaurant_id BIGINT NOT NULL,
    campaign_id   TEXT NOT NULL,
    shard         SMALLINT NOT NULL,
    sent          BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (restaurant_id, campaign_id, shard),
    FOREIGN KEY (restaurant_id, campaign_id) REFERENCES campaigns (restaurant_id, id) ON DELETE CASCADE
);
