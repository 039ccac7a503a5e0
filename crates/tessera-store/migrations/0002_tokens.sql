-- Reference tokens: only a SHA-256 of the token is kept, never the token.
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    jti TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT,
    audiences TEXT NOT NULL,
    iat BIGINT NOT NULL,
    exp BIGINT NOT NULL,
    revoked BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_exp ON tokens (exp);

-- Revoked JWTs, by jti, remembered until the token would have expired anyway.
CREATE TABLE IF NOT EXISTS revoked_jtis (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    exp BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_jtis_exp ON revoked_jtis (exp);
