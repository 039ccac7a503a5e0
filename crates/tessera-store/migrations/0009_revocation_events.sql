-- The revocation feed (issue 12; RFC 8417 security events, delivered by RFC 8936 polling):
-- every revocation, recorded in the transaction that makes it, numbered in commit order by
-- the one-row counter below (its row lock orders concurrent writers on PostgreSQL). Kept
-- until the tokens it is about would have expired anyway.
CREATE TABLE IF NOT EXISTS revocation_events (
    seq BIGINT PRIMARY KEY,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- 1: every receiver may know it (a removed signing key); 0: only the audiences below.
    broadcast BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS revocation_events_expires ON revocation_events (expires_at);

-- Who may learn of an event: the audiences of the tokens it is about (a receiver sees an
-- event when its client id is one of them, as at introspection).
CREATE TABLE IF NOT EXISTS revocation_event_audiences (
    audience TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (audience, seq)
);

CREATE TABLE IF NOT EXISTS revocation_event_seq (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO revocation_event_seq (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
