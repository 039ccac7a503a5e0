//! Sender-constrained tokens at the resource server: which binding a validated token carries
//! (`cnf`, RFC 7800 §3.1) and whether the way it was presented satisfies it: a DPoP key
//! (RFC 9449 §7, `cnf.jkt`) or a client certificate (RFC 8705 §3, `cnf.x5t#S256`). Any other
//! confirmation method is refused rather than taken as bearer, since it cannot be checked.

use aws_lc_rs::digest;
use tessera_jose::dpop::{ProofError, ProofExpectations, VerifiedProof, verify_proof};
use tessera_types::rfc8705::CertificateThumbprint;

use crate::{GuardError, Principal};

/// The client certificate of the TLS connection a request came over, when the API terminates
/// mutual TLS itself: insert it into the request extensions *before* the guard layer (from the
/// TLS acceptor's peer certificate, e.g. tonic's `TlsConnectInfo::peer_certs()` or rustls'
/// `peer_certificates()`, the first, DER). Never build it from a header a client could send.
/// Certificate-bound tokens (RFC 8705 §3) pass only when it matches their `cnf.x5t#S256`;
/// without it they are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(CertificateThumbprint);

impl ClientCertificate {
    /// From the DER encoding of the certificate the client presented.
    pub fn from_der(der: &[u8]) -> Self {
        let mut sha = [0u8; 32];
        sha.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
        Self(CertificateThumbprint::from_sha256(&sha))
    }

    /// RFC 8705 §3.1: the SHA-256 thumbprint tokens are bound to.
    pub fn thumbprint(&self) -> &CertificateThumbprint {
        &self.0
    }
}

/// How the token was presented: the scheme, and the connection's certificate if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presentation<'a> {
    /// With the `DPoP` scheme (RFC 9449 §7.1) rather than `Bearer`.
    pub(crate) dpop: bool,
    pub(crate) certificate: Option<&'a ClientCertificate>,
}

/// Checks the token's binding against how it was presented, and returns the DPoP key it is
/// bound to (which the proof must then be signed with) when presented with the DPoP scheme.
pub(crate) fn check_binding<'p>(p: &'p Principal, how: Presentation<'_>) -> Result<Option<&'p str>, GuardError> {
    let Some(cnf) = &p.cnf else {
        // §7.1 defines the DPoP scheme for DPoP-bound tokens only.
        return if how.dpop { Err(not_dpop_bound()) } else { Ok(None) };
    };
    // A method this API cannot check (or none at all: RFC 7800 §3.1 wants one): refused,
    // never taken as bearer.
    if !cnf.other.is_empty() || (cnf.jkt.is_none() && cnf.x5t_s256.is_none()) {
        return Err(GuardError::InvalidToken(
            "the token is bound by a confirmation method this API cannot check".into(),
        ));
    }
    // RFC 8705 §3: "the protected resource MUST obtain ... the client certificate used for
    // mutual TLS authentication and MUST verify that the certificate matches the certificate
    // associated with the access token. If they do not match, the resource access attempt
    // MUST be rejected with an error, per [RFC6750], using an HTTP 401 status code and the
    // invalid_token error code."
    if let Some(bound) = &cnf.x5t_s256 {
        match how.certificate {
            Some(c) if c.thumbprint() == bound => {}
            Some(_) => {
                return Err(GuardError::InvalidToken("the token is bound to another client certificate".into()));
            }
            None => {
                return Err(GuardError::InvalidToken(
                    "a certificate-bound token needs the client certificate it is bound to".into(),
                ));
            }
        }
    }
    match (cnf.jkt.as_deref(), how.dpop) {
        // RFC 9449 §7.2: a DPoP-bound token is no bearer token; refusing it here means a
        // stolen one cannot be replayed without its key.
        (Some(_), false) => {
            Err(GuardError::InvalidToken("a DPoP-bound token must be presented with the DPoP scheme".into()))
        }
        (None, true) => Err(not_dpop_bound()),
        (jkt, _) => Ok(jkt),
    }
}

fn not_dpop_bound() -> GuardError {
    GuardError::InvalidToken("the token is not DPoP-bound".into())
}

/// Checks `proof` for this request and token (RFC 9449 §4.3 items 2–12, through
/// [`verify_proof`]) and that it is signed by the key the token is bound to (§7.1: "the
/// resource server MUST check that the value of the `jkt` ... matches the JWK SHA-256
/// Thumbprint of the public key in the DPoP proof"). Replay (item 13) is the caller's.
pub(crate) fn check_proof(proof: &str, expect: &ProofExpectations<'_>, jkt: &str) -> Result<VerifiedProof, GuardError> {
    let v = verify_proof(proof, expect).map_err(|e| match e {
        // §9: the answer names the nonce to use; the first accepted one is the current one.
        ProofError::NonceRequired => GuardError::UseDpopNonce(expect.nonces.first().cloned().unwrap_or_default()),
        e => GuardError::InvalidDpopProof(e.to_string()),
    })?;
    if v.jkt != jkt {
        return Err(GuardError::InvalidDpopProof("the proof's key is not the key the token is bound to".into()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use tessera_types::rfc8705::Confirmation;
    use tessera_types::rfc9068::AccessTokenClaims;

    use super::*;

    fn principal(cnf: Option<serde_json::Value>) -> Principal {
        let mut claims = serde_json::json!({ "iss": "https://as", "aud": "api", "exp": 100 });
        if let Some(cnf) = cnf {
            claims["cnf"] = cnf;
        }
        let claims = AccessTokenClaims::from_json(claims.to_string().as_bytes()).unwrap();
        Principal::new("https://as".into(), claims, None)
    }

    #[test]
    fn rfc7800_3_1_every_binding_must_be_satisfied_and_unknown_ones_refuse_the_token() {
        let cert = ClientCertificate::from_der(b"cert");
        let other = ClientCertificate::from_der(b"other");
        let x5t = serde_json::to_value(Confirmation::certificate(cert.thumbprint().clone())).unwrap();
        let both = serde_json::json!({ "jkt": "K", "x5t#S256": cert.thumbprint().as_str() });
        let how = |dpop, certificate| Presentation { dpop, certificate };
        let ok = |p: &Principal, h| check_binding(p, h).map(|k| k.map(str::to_owned));
        // Unbound: bearer only.
        assert_eq!(ok(&principal(None), how(false, None)), Ok(None));
        assert!(ok(&principal(None), how(true, None)).is_err());
        // DPoP-bound: the DPoP scheme only, returning the key the proof must be signed with.
        let jkt = principal(Some(serde_json::json!({ "jkt": "K" })));
        assert_eq!(ok(&jkt, how(true, None)), Ok(Some("K".into())));
        assert!(ok(&jkt, how(false, Some(&cert))).is_err());
        // Certificate-bound: its certificate only.
        let cb = principal(Some(x5t));
        assert_eq!(ok(&cb, how(false, Some(&cert))), Ok(None));
        assert!(ok(&cb, how(false, Some(&other))).is_err());
        assert!(ok(&cb, how(false, None)).is_err());
        // Bound both ways: both are checked.
        let both = principal(Some(both));
        assert_eq!(ok(&both, how(true, Some(&cert))), Ok(Some("K".into())));
        assert!(ok(&both, how(true, None)).is_err());
        assert!(ok(&both, how(false, Some(&cert))).is_err());
        // Unknown or no method: refused whichever way it comes.
        for cnf in
            [serde_json::json!({ "kid": "k" }), serde_json::json!({}), serde_json::json!({ "jkt": "K", "jwk": {} })]
        {
            let p = principal(Some(cnf.clone()));
            for h in [how(false, None), how(true, None), how(false, Some(&cert))] {
                assert!(matches!(check_binding(&p, h), Err(GuardError::InvalidToken(_))), "{cnf}");
            }
        }
    }
}
