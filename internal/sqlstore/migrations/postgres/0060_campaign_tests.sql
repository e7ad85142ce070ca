-- 0060: test sends of a campaign ("Send test to me"): one row per request,
-- keyed by the staff member's request key, so a double click sends once;
-- the rows of the last minute bound how many a campaign gets (see
-- sqlstore.RequestCampaignTest). The email itself is an emails row of the
-- campaign_test consumer, like a receipt.
CREATE TABLE campaign_tests (
    restaurant_id BIGINT NOT NULL,
    campaign_id   TEXT NOT NULL,
    user_id       BIGINT NOT NULL,
    request_key   TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, user_id, request_key),
    FOREIGN KEY (restaurant_id, campaign_id) REFERENCES campaigns (restaurant_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_tests_recent ON campaign_tests (campaign_id, created_at);
