-- 0070: the campaigns page's audience counts, as in
-- migrations/postgres/0070_consent_counts.sql.
CREATE INDEX customers_opted_in ON customers (restaurant_id) WHERE marketing_opt_in;
CREATE INDEX customers_consent_pending ON customers (restaurant_id)
    WHERE consent_pending_at IS NOT NULL AND NOT marketing_opt_in;
