-- Federated workload tokens a trust accepts a bounded number of times (issue 15, a trust's
-- max_uses > 1): the used-token rows of client assertions count uses. Existing rows were
-- single-use.
ALTER TABLE client_assertion_jtis ADD COLUMN uses BIGINT NOT NULL DEFAULT 1;

-- Reference tokens issued to a federated workload: the `workload` claim (JSON) introspection
-- reports, as a JWT carries it. NULL: a client that authenticated itself.
ALTER TABLE tokens ADD COLUMN workload TEXT;
