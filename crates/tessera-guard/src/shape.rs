//! What a token looks like, decided locally before anything costs a call to the authority.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::OpaqueTokens;

/// Length of a Tessera reference token: 32 random bytes, base64url without padding.
const REFERENCE_LEN: usize = 43;

/// A compact JWS has three dot-separated parts (RFC 7515 §7.1); a reference token has no dot.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Whether `token` may be an opaque token of the authority, per `shape`.
pub(crate) fn opaque_fits(token: &str, shape: OpaqueTokens) -> bool {
    match shape {
        // Exactly what the server's `random_token(rng, 32)` produces: 43 characters that decode
        // (canonically: the last character carries 2 zero bits) to 256 bits.
        OpaqueTokens::TesseraReference => {
            token.len() == REFERENCE_LEN && URL_SAFE_NO_PAD.decode(token).is_ok_and(|b| b.len() == 32)
        }
        // The layer has already checked the RFC 6750 b64token syntax and the guard the length.
        OpaqueTokens::Any => !token.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tessera_reference_tokens_are_43_base64url_characters_of_256_bits() {
        let good = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(good.len(), 43);
        assert!(opaque_fits(&good, OpaqueTokens::TesseraReference));
        for bad in [
            &good[..42],                  // too short
            &format!("{good}A"),          // too long
            &format!("{}=", &good[..42]), // padding
            &format!("{}+", &good[..42]), // standard base64, not base64url
            &format!("{}B", &good[..42]), // non-zero trailing bits: not canonical
            "not-a-token",
        ] {
            assert!(!opaque_fits(bad, OpaqueTokens::TesseraReference), "{bad}");
            assert!(opaque_fits(bad, OpaqueTokens::Any), "{bad}");
        }
    }
}
