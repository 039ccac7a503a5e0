//! The `token` parameter of introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1).

use tessera_types::rfc7009::TokenTypeHint;

use crate::error::OAuthError;
use crate::form::Form;

/// Longest `token` parameter accepted.
pub(crate) const MAX_TOKEN_PARAM: usize = 8 * 1024;

/// `token` is REQUIRED; anything longer than any token this server issues is refused
/// outright. `token_type_hint` is OPTIONAL and only a hint: every kind of token is looked up
/// whatever it says, so it is only checked for repetition (RFC 6749 §3.2).
pub(crate) fn token_param(form: &Form) -> Result<&str, OAuthError> {
    let token = form.single("token")?.ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    if token.len() > MAX_TOKEN_PARAM {
        return Err(OAuthError::invalid_request(format!("token exceeds {MAX_TOKEN_PARAM} bytes")));
    }
    let _hint = form.single("token_type_hint")?.map(TokenTypeHint::parse);
    Ok(token)
}
