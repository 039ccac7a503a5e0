-- Mutual-TLS client authentication (RFC 8705 section 2): a client's registered certificate
-- thumbprints and/or the subject its CA-issued certificate must carry, as JSON (NULL: none).
ALTER TABLE clients ADD COLUMN tls_client TEXT;

-- Certificate-bound reference tokens (RFC 8705 section 3): the cnf introspection reports.
ALTER TABLE tokens ADD COLUMN cnf TEXT;
