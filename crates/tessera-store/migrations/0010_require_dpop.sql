-- DPoP (RFC 9449): a client whose token requests must carry a proof (1), so that every token
-- it gets is bound to its key; 0: a proof is optional.
ALTER TABLE clients ADD COLUMN require_dpop BIGINT NOT NULL DEFAULT 0;
