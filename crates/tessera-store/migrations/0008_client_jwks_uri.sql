-- private_key_jwt (RFC 7523) with keys published by the client: the URL of its JWK Set
-- (RFC 7591 section 2 `jwks_uri`; NULL: none). A client has `jwks` or `jwks_uri`, never both
-- ("MUST NOT both be present"): the store refuses a row with both.
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
