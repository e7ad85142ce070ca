-- 0070: the campaigns page's audience counts (ConsentCounts) read two small
-- partial indexes instead of every customer of the restaurant joined to
-- its suppressions: the opted-in customers, and those whose double opt-in
-- is pending. The count of the opted-in who are suppressed goes the other
-- way, from the restaurant's suppressions (few) to their customers.
CREATE INDEX customers_opted_in ON customers (restaurant_id) WHERE marketing_opt_in;
CREATE INDEX customers_consent_pending ON customers (restaurant_id)
    WHERE consent_pending_at IS NOT NULL AND NOT marketing_opt_in;
