//! Sender-constrained tokens at the resource server: which binding a validated token carries
//! (`cnf`, RFC 7800 §3.1) and whether the way it was presented satisfies it. DPoP (RFC 9449
//! §7) is checked here; any other confirmation method (RFC 8705 `x5t#S256` among them) is
//! refused rather than taken as bearer, since the guard cannot check it.

use tessera_jose::dpop::{ProofExpectations, VerifiedProof, verify_proof};

use crate::{GuardError, Principal};

/// RFC 9449 §7.2 / RFC 8705 §3: a token presented as a bearer token must not be bound to
/// anything. "A protected resource that supports only [RFC 6750] and not DPoP" would take a
/// DPoP-bound token as bearer; this one refuses it, so a stolen DPoP-bound token cannot be
/// replayed without its key.
pub(crate) fn check_bearer_use(p: &Principal) -> Result<(), GuardError> {
    match &p.cnf {
        None => Ok(()),
        Some(cnf) if cnf.jkt.is_some() => {
            Err(GuardError::InvalidToken("a DPoP-bound token must be presented with the DPoP scheme".into()))
        }
        Some(_) => Err(unknown_binding()),
    }
}

/// The key a token presented with the `DPoP` scheme is bound to (RFC 9449 §6.1 `cnf.jkt`).
/// A token without one is refused: §7.1 defines the scheme for DPoP-bound tokens only.
pub(crate) fn bound_key(p: &Principal) -> Result<&str, GuardError> {
    let cnf = p.cnf.as_ref().ok_or_else(|| GuardError::InvalidToken("the token is not DPoP-bound".into()))?;
    // Bound to something more (a certificate, an unknown method): that cannot be checked here.
    if cnf.x5t_s256.is_some() || !cnf.other.is_empty() {
        return Err(unknown_binding());
    }
    cnf.jkt.as_deref().ok_or_else(|| GuardError::InvalidToken("the token is not DPoP-bound".into()))
}

fn unknown_binding() -> GuardError {
    GuardError::InvalidToken("the token is bound by a confirmation method this API cannot check".into())
}

/// Checks `proof` for this request and token (RFC 9449 §4.3 items 2–12, through
/// [`verify_proof`]) and that it is signed by the key the token is bound to (§7.1: "the
/// resource server MUST check that the value of the `jkt` ... matches the JWK SHA-256
/// Thumbprint of the public key in the DPoP proof"). Replay (item 13) is the caller's.
pub(crate) fn check_proof(proof: &str, expect: &ProofExpectations<'_>, jkt: &str) -> Result<VerifiedProof, GuardError> {
    let v = verify_proof(proof, expect).map_err(|e| GuardError::InvalidDpopProof(e.to_string()))?;
    if v.jkt != jkt {
        return Err(GuardError::InvalidDpopProof("the proof's key is not the key the token is bound to".into()));
    }
    Ok(v)
}
