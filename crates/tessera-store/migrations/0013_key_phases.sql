-- Automatic signing-key rotation (issue 16): a key is published as `next` before it signs,
-- `active` while it signs, `retired` once it no longer does, until every token it signed has
-- expired (`remove_after`), then removed. At most one next key per algorithm, as at most one
-- active: when several instances share the database, one of them prepublishes.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN retired_at BIGINT;
ALTER TABLE signing_keys ADD COLUMN remove_after BIGINT;
-- Keys from before: an active key signs since it was made; a retired key's retirement time is
-- unknown, so it is never removed on a schedule (only by `key remove --force`).
UPDATE signing_keys SET activates_at = created_at WHERE status = 'active' AND activates_at IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_next ON signing_keys (alg) WHERE status = 'next';
