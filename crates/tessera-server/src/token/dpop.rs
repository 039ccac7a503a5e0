//! DPoP-bound access tokens at the token endpoint (RFC 9449 §5): a request with a valid
//! `DPoP` proof gets a token bound to the proof's key (`cnf.jkt`, `token_type: DPoP`). The
//! proof's checks are tessera-jose's; the `jti` of every accepted proof is recorded in the
//! shared replay table, so a proof is used once across instances and restarts.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_jose::dpop::{ProofError, ProofExpectations, verify_proof};
use tessera_types::{ClientId, ErrorCode, UnixTime};

use crate::client_auth::DpopHeader;
use crate::error::OAuthError;
use crate::state::Inner;

/// How old a proof may be, and how far ahead of our clock (RFC 9449 §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopLimits {
    /// Seconds an `iat` may lie in the past.
    pub max_age: i64,
    /// Seconds an `iat` may lie in the future.
    pub leeway: i64,
}

impl Default for DpopLimits {
    fn default() -> Self {
        Self { max_age: 60, leeway: 5 }
    }
}

/// The row owner of used proof ids in the replay table shared with client assertions. A
/// client with this id would share only the table, not the keys: proof rows are keyed by the
/// hash of the key thumbprint and the `jti`, assertion rows by the hash of the `jti`.
const REPLAY_OWNER: &str = "urn:tessera:dpop-proof";

fn invalid(why: impl std::fmt::Display) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, format!("DPoP proof refused: {why}"))
}

/// The key a token request's proof binds the token to (its RFC 7638 thumbprint), `None` for
/// a request without a proof. §4.3's checks, then the `jti` recorded once.
pub(crate) async fn bind(s: &Inner, header: &DpopHeader) -> Result<Option<String>, OAuthError> {
    let proof = match header {
        DpopHeader::Absent => return Ok(None),
        // §4.3 item 1: "There is not more than one DPoP HTTP request header field."
        DpopHeader::Several => return Err(invalid("more than one DPoP header")),
        DpopHeader::One(p) => p,
    };
    let now = s.clock.now();
    let expect = ProofExpectations {
        method: "POST",
        url: &s.token_endpoint,
        now: now.0,
        max_age: s.dpop.max_age,
        leeway: s.dpop.leeway,
        access_token: None,
        nonce: None,
    };
    let proof = verify_proof(proof, &expect).map_err(|e: ProofError| {
        tracing::info!(reason = %e, "DPoP proof refused at the token endpoint");
        invalid(e)
    })?;
    // §11.1: a proof is accepted once while its iat is in the window.
    let owner = ClientId::new(REPLAY_OWNER).expect("a valid id");
    let key = URL_SAFE_NO_PAD
        .encode(digest::digest(&digest::SHA256, format!("{}:{}", proof.jkt, proof.jti).as_bytes()).as_ref());
    let until = UnixTime(proof.iat.saturating_add(s.dpop.max_age).saturating_add(s.dpop.leeway));
    match s.stores.assertions.use_jti(&owner, &key, until).await {
        Ok(true) => Ok(Some(proof.jkt)),
        Ok(false) => Err(invalid("the proof was used before")),
        Err(e) => {
            tracing::error!(error = %e, "recording a DPoP proof id failed");
            Err(OAuthError::new(ErrorCode::TemporarilyUnavailable, "DPoP is unavailable; retry shortly")
                .with_retry_after(1))
        }
    }
}
