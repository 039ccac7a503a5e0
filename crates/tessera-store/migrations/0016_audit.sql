-- The audit trail (issue 16): every registry change with who made it, and the security events
-- of the running servers (failed authentication, revocation, lockouts), numbered in commit
-- order by the one-row counter below. Pruned after the configured retention.
CREATE TABLE IF NOT EXISTS audit (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    -- cli:USER, seed, admin-api:CLIENT_ID, server, client:CLIENT_ID, peer:ADDRESS.
    actor TEXT NOT NULL,
    -- A closed set (tessera_store::AuditAction): client.added, auth.failed, ...
    action TEXT NOT NULL,
    -- What it is about: a client id, scope name, trust name, kid; '' when nothing in particular.
    target TEXT NOT NULL,
    -- JSON: what changed (before/after for updates), never a secret or a token.
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, seq);

CREATE TABLE IF NOT EXISTS audit_seq (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO audit_seq (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
