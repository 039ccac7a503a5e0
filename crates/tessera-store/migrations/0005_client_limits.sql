-- Per-client overrides of the server's issuance limits (NULL: the server's default; 0: no
-- limit), and a per-client not-before: tokens issued earlier are no longer active
-- (`tessera token revoke --client`).
ALTER TABLE clients ADD COLUMN issuance_rate_milli BIGINT;
ALTER TABLE clients ADD COLUMN issuance_burst BIGINT;
ALTER TABLE clients ADD COLUMN max_live_tokens BIGINT;
ALTER TABLE clients ADD COLUMN tokens_not_before BIGINT;

-- Deleting a client's reference tokens, and counting them, without a full scan.
CREATE INDEX IF NOT EXISTS tokens_client ON tokens (client_id);
