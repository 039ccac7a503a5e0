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

/// How old a proof may be, and how far ahead of our clock (RFC 9449 §11.1); whether proofs
/// must carry a server nonce (§8), and how often it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopLimits {
    /// Seconds an `iat` may lie in the past.
    pub max_age: i64,
    /// Seconds an `iat` may lie in the future.
    pub leeway: i64,
    /// Proofs without a current nonce are answered `use_dpop_nonce` with one.
    pub require_nonce: bool,
    /// Seconds a nonce is handed out; it is accepted for as long again.
    pub nonce_rotation_s: u64,
}

impl Default for DpopLimits {
    fn default() -> Self {
        Self { max_age: 60, leeway: 5, require_nonce: false, nonce_rotation_s: 300 }
    }
}

/// The label of the nonce secret derived from the key-encryption key.
pub(crate) const NONCE_LABEL: &[u8] = b"tessera dpop nonce v1";

/// RFC 9449 §8.1.
pub(crate) const NONCE_HEADER: &str = "dpop-nonce";

/// The nonce to send with an answer to a DPoP request (§8.2: a server "MAY supply the new
/// nonce value to the client using the DPoP-Nonce header in any response"), when nonces are
/// required.
pub(crate) fn current_nonce(s: &Inner) -> Option<String> {
    s.dpop.require_nonce.then(|| s.dpop_nonces.current(s.clock.now().0))
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
    let nonces = if s.dpop.require_nonce { s.dpop_nonces.accepted(now.0).to_vec() } else { Vec::new() };
    let expect = ProofExpectations {
        method: "POST",
        url: &s.token_endpoint,
        now: now.0,
        max_age: s.dpop.max_age,
        leeway: s.dpop.leeway,
        access_token: None,
        nonces: &nonces,
    };
    let proof = verify_proof(proof, &expect).map_err(|e: ProofError| match e {
        // §8.1: "the authorization server responds ... with an error value of
        // use_dpop_nonce" and the nonce to use in a `DPoP-Nonce` header.
        ProofError::NonceRequired => OAuthError::new(
            ErrorCode::UseDpopNonce,
            "the DPoP proof must carry the server's current nonce (DPoP-Nonce header)",
        )
        .with_dpop_nonce(s.dpop_nonces.current(now.0)),
        e => {
            tracing::info!(reason = %e, "DPoP proof refused at the token endpoint");
            invalid(e)
        }
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
