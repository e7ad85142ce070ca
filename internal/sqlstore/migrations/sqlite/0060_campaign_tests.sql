-- 0060: test sends of a campaign, as in migrations/postgres/0060_campaign_tests.sql.
CREATE TABLE campaign_tests (
    restaurant_id INTEGER NOT NULL,
    campaign_id   TEXT NOT NULL,
    user_id       INTEGER NOT NULL,
    request_key   TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, user_id, request_key),
    FOREIGN KEY (restaurant_id, campaign_id) REFERENCES campaigns (restaurant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX campaign_tests_recent ON campaign_tests (campaign_id, created_at);
