-- Reference tokens keyed by a handle (issue 17): the token's first 22 characters, which start
-- with its issuance second and a sequence number, so new rows land at the end of the key's
-- B-tree. Keyed by the hash, every insert wrote a random leaf page: a batch of 60 tokens
-- dirtied some 60 pages of WAL, and the checkpointer copied them all back. The hash is kept,
-- unindexed: a lookup finds the row by handle and must match the hash too, so a leaked
-- database still holds no usable token.
--
-- Rows written before this migration are keyed by the first 22 characters of their hash
-- (`tessera_store::LEGACY_HANDLE_CHARS`), which a lookup also tries. Runs once, in the
-- migration's transaction.
CREATE TABLE tokens_by_handle (
    handle TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT,
    audiences TEXT NOT NULL,
    iat BIGINT NOT NULL,
    exp BIGINT NOT NULL,
    revoked BIGINT NOT NULL,
    cnf TEXT,
    workload TEXT
);
INSERT INTO tokens_by_handle (handle, hash, jti, client_id, scope, audiences, iat, exp, revoked, cnf, workload)
    SELECT SUBSTR(hash, 1, 22), hash, jti, client_id, scope, audiences, iat, exp, revoked, cnf, workload FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_by_handle RENAME TO tokens;
CREATE INDEX IF NOT EXISTS tokens_exp ON tokens (exp);
CREATE INDEX IF NOT EXISTS tokens_client ON tokens (client_id);
