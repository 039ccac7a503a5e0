-- Which key-encryption key seals the signing keys: a check value derived from it
-- (HMAC-SHA256 of a fixed label under the key, never the key). One row. A command holding
-- another key-encryption key refuses to read or write sealed keys instead of sealing new
-- ones that no other instance can open.
CREATE TABLE IF NOT EXISTS kek_check (
    id BIGINT PRIMARY KEY,
    check_value TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
