-- 0003_instance: a random id for this database, made once. Shared caches
-- (Redis) put it in their keys, so two deployments that share a Redis but
-- not a database can never serve each other's data.
CREATE TABLE instance (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    instance_id TEXT NOT NULL
);
INSERT INTO instance (instance_id) VALUES (replace(gen_random_uuid()::text, '-', ''));
