//! RFC 9068 JWT access tokens: header `typ: at+jwt` and `kid`, claims `iss sub aud exp iat
//! nbf jti client_id scope`, compact JWS serialisation (RFC 7515 §7.1).

use tessera_store::ClientRecord;
use tessera_types::rfc9068::{Audience, Claims};
use tessera_types::{ClientId, Issuer, Jti, SigningAlg, UnixTime};

use crate::error::OAuthError;
use crate::grant::Grant;
use crate::random::{Random, random_token};
use crate::registry::Registry;

/// Signs a token for `client` with the active key of its algorithm, or of the server's
/// first algorithm when the client names none.
pub(crate) fn issue(
    issuer: &Issuer,
    registry: &Registry,
    server_algs: &[SigningAlg],
    client: &ClientRecord,
    grant: &Grant,
    now: UnixTime,
    rng: &dyn Random,
) -> Result<String, OAuthError> {
    let alg = client.signing_alg.unwrap_or(server_algs[0]);
    let key = registry
        .signing_key(alg)
        .ok_or_else(|| OAuthError::server_error(format!("no active {alg} key; configure it in signing_algs")))?;
    let claims = claims(issuer, &client.client_id, grant, now, client.access_token_lifetime, rng);
    let token = key.sign_access_token(&claims).map_err(OAuthError::server_error)?;
    // A line per token at INFO costs an eighth of the issuance rate with JSON logs (issue 16,
    // bench/run-ops.sh): issuance is counted per client in the metrics, and each token is a
    // DEBUG line for whoever wants them (`RUST_LOG=info,tessera_server::token=debug`).
    tracing::debug!(client_id = %client.client_id, jti = %claims.jti, scope = %grant.scopes, kid = %key.kid, "issued access token");
    Ok(token)
}

/// Claims for a client credentials token. §2.2: with no resource owner, `sub` is the client.
pub fn claims(
    issuer: &Issuer,
    client_id: &ClientId,
    grant: &Grant,
    now: UnixTime,
    lifetime: i64,
    rng: &dyn Random,
) -> Claims {
    // RFC 8693: an exchanged token never outlives its subject token.
    let exp = match grant.not_after {
        Some(limit) => UnixTime(now.plus(lifetime).0.min(limit.0)),
        None => now.plus(lifetime),
    };
    Claims {
        iss: issuer.clone(),
        sub: grant.subject.clone().unwrap_or_else(|| client_id.clone()),
        aud: Audience::from_list(grant.audiences.clone()),
        exp,
        iat: now,
        nbf: now,
        jti: Jti::new(random_token(rng, 16)).expect("22 base64url characters are a valid jti"),
        client_id: client_id.clone(),
        scope: (!grant.scopes.is_empty()).then(|| grant.scopes.to_string()),
        cnf: grant.cnf.clone(),
        workload: grant.workload.clone(),
        act: grant.act.clone(),
    }
}
