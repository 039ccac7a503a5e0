-- At most one active signing key per algorithm, even when instances sharing a database
-- start together and each generates one: the second insert fails and that instance uses the
-- first one's key.
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_active ON signing_keys (alg) WHERE status = 'active';
