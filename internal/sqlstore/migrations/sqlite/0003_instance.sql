-- 0003_instance: a random id for this database, made once. Shared caches
-- (Redis) put it in their keys, so two deployments that share a Redis but
-- not a database can never serve each other's data.
CREATE TABLE instance (
    singleton   INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    instance_id TEXT NOT NULL
) STRICT;
INSERT INTO instance (instance_id) VALUES (lower(hex(randomblob(16))));
