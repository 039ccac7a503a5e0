-- private_key_jwt (RFC 7523): a client's registered public keys as a JWK Set (JSON text,
-- NULL: none), and the one authentication method it may use (NULL: whatever it has).
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;

-- Client assertion ids seen, kept until the assertion expires (RFC 7523 section 3 item 7):
-- the unique key makes a second use of a jti fail on insert, on every instance that shares
-- the database and across restarts. Only a SHA-256 of the jti is kept.
CREATE TABLE IF NOT EXISTS client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
CREATE INDEX IF NOT EXISTS client_assertion_jtis_expires ON client_assertion_jtis (expires_at);
