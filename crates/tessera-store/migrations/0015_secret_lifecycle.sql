-- Secrets lifecycle (issue 16): an optional expiry per secret (NULL: none), and when it was
-- last used (written in batches by the servers, not per request; NULL: never, or not yet
-- recorded). Neither changes the registry revision.
ALTER TABLE client_secrets ADD COLUMN expires_at BIGINT;
ALTER TABLE client_secrets ADD COLUMN last_used_at BIGINT;
