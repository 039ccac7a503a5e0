-- Federated workload identity (issue 15): external issuers whose tokens workloads present
-- instead of a client secret (a Kubernetes cluster, a SPIFFE trust domain, GitHub Actions),
-- and the claim rules that map those workloads to clients.
CREATE TABLE IF NOT EXISTS trusts (
    name TEXT PRIMARY KEY,
    -- kubernetes | spiffe | github-actions | oidc: the claim shapes the trust expects.
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    -- Where the keys come from: an explicit JWK Set URL, or a JWK Set given inline (air-gapped
    -- clusters); both NULL: the issuer's discovery document names its jwks_uri.
    jwks_uri TEXT,
    jwks TEXT,
    -- PEM of the CA that issues the issuer's TLS certificate; NULL: the web PKI.
    ca_pem TEXT,
    -- The audience external tokens must carry; NULL: Tessera's issuer identifier.
    audience TEXT,
    -- Seconds: refuse tokens issued longer ago / living longer, whatever their exp; NULL: no bound.
    max_token_age BIGINT,
    max_lifetime BIGINT,
    -- How many times one external token may be used; NULL: as often as it lives (Kubernetes
    -- reuses projected tokens).
    max_uses BIGINT,
    -- The id the next rule gets: ids are never reused, so a rule id recorded on a token names
    -- one rule for good.
    next_rule_id BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

-- Rules of a trust, evaluated in ascending id (the order added): the first whose conditions
-- (a JSON array of "CLAIM=PATTERN") all hold names the client.
CREATE TABLE IF NOT EXISTS trust_rules (
    trust TEXT NOT NULL,
    id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    conditions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (trust, id)
);
