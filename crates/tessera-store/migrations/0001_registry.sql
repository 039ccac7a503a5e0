-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are BIGINT Unix seconds,
-- lists and maps are JSON text, booleans are 0/1.
CREATE TABLE IF NOT EXISTS registry_revision (
    id BIGINT PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO registry_revision (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS scopes (
    name TEXT PRIMARY KEY,
    display_name TEXT,
    display_names TEXT NOT NULL,
    description TEXT,
    resources TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    display_name TEXT,
    permissions TEXT NOT NULL,
    access_token_lifetime BIGINT NOT NULL,
    token_format TEXT NOT NULL,
    signing_alg TEXT,
    enabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Only hashes: `sha256$...` for generated 256-bit secrets, `$argon2id$...` for imported ones.
CREATE TABLE IF NOT EXISTS client_secrets (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS client_secrets_client ON client_secrets (client_id);

-- Private keys are sealed (AES-256-GCM) with the key-encryption key, never stored in clear.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    status TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
