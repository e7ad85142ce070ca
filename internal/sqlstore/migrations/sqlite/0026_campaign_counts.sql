-- 0026: campaign counts in shards, as in migrations/postgres/0026_campaign_counts.sql.
CREATE TABLE campaign_counts (
    restaurant_id INTEGER NOT NULL,
    campaign_id   TEXT NOT NULL,
    shard         INTEGER NOT NULL,
    sent          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (restaurant_id, campaign_id, shard),
    FOREIGN KEY (restaurant_id, campaign_id) REFERENCES campaigns (restaurant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
