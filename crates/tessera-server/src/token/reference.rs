//! Opaque reference tokens (RFC 7662's use case): 256 bits from the OS RNG, base64url. The
//! store keeps only their SHA-256, so a leaked database holds no usable token; a 256-bit
//! random value needs no salt or slow hash.

use aws_lc_rs::digest;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_store::{ClientRecord, TokenRecord};
use tessera_types::{ClientId, ErrorCode, Jti, UnixTime};

use crate::error::OAuthError;
use crate::grant::Grant;
use crate::random::{Random, random_token};
use crate::storage::StoreFuture;
use crate::throttle::IssuanceLimiter;

/// Where issued reference tokens are kept.
pub trait TokenIssueStore: Send + Sync {
    /// Stores `record`, resolving once it is durable.
    fn insert_reference(&self, record: TokenRecord) -> StoreFuture<'_, ()>;
}

/// Issues a reference token for `client`, within its cap on live reference tokens.
pub(crate) async fn issue(
    store: &dyn TokenIssueStore,
    issuance: &IssuanceLimiter,
    client: &ClientRecord,
    grant: &Grant,
    now: UnixTime,
    rng: &dyn Random,
) -> Result<String, OAuthError> {
    if !issuance.take_live(client) {
        tracing::warn!(client_id = %client.client_id, "live reference token cap reached");
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "this client holds as many live reference tokens as it may; reuse them until they expire",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(60)
        .limited_by(crate::metrics::Limited::LiveTokens));
    }
    let token = random_token(rng, 32);
    let record = record(&token, &client.client_id, grant, now, client.access_token_lifetime, rng);
    let jti = record.jti.clone();
    // Committed (group commit) before the response is sent: a token the client holds is
    // never lost to a crash.
    if let Err(e) = store.insert_reference(record).await {
        issuance.untake_live(client);
        return Err(OAuthError::unavailable(e));
    }
    issuance.committed_live(client);
    tracing::debug!(client_id = %client.client_id, %jti, scope = %grant.scopes, "issued reference token");
    Ok(token)
}

/// What the store keys a token by.
pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Whether a presented token has the shape of a compact JWS (three dot-separated parts) rather
/// than of a reference token (base64url, no dots).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Whether a presented token has the shape of a Tessera reference token: 32 random bytes,
/// base64url without padding (43 characters). Anything else cannot be one, and is refused
/// without a store read.
pub fn looks_like_reference(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The record stored for `token`.
pub fn record(
    token: &str,
    client_id: &ClientId,
    grant: &Grant,
    now: UnixTime,
    lifetime: i64,
    rng: &dyn Random,
) -> TokenRecord {
    TokenRecord {
        hash: hash(token),
        jti: Jti::new(random_token(rng, 16)).expect("22 base64url characters are a valid jti"),
        client_id: client_id.clone(),
        scope: (!grant.scopes.is_empty()).then(|| grant.scopes.clone()),
        audiences: grant.audiences.clone(),
        iat: now,
        exp: now.plus(lifetime),
        revoked: false,
        cnf: grant.cnf.clone(),
        workload: grant.workload.clone(),
    }
}
