//! RFC 7662 introspection from the resource server's side.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_types::rfc7009::TokenTypeHint;
use tessera_types::rfc9068::AccessTokenClaims;

use crate::http::AuthorityHttp;
use crate::{ClientCredentials, GuardError};

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Asks `endpoint` about `token`: `Some(members)` when active (and its `exp` and `aud`
/// readable), `None` when not. Any failure to
/// get an answer is `Unavailable` (fail closed), never "inactive" and never "active": network
/// errors, timeouts, redirects and any non-2xx status. A 401/400 means the API's own
/// credentials or permission are wrong: an operator's problem, reported as unavailable rather
/// than blamed on the caller's token.
pub(crate) async fn introspect(
    http: &AuthorityHttp,
    endpoint: &reqwest::Url,
    creds: &ClientCredentials,
    token: &str,
) -> Result<Option<AccessTokenClaims>, GuardError> {
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
    let basic = STANDARD.encode(format!(
        "{}:{}",
        form_encode(creds.client_id.as_str()),
        form_encode(creds.client_secret.expose())
    ));
    // RFC 7009 §2.1's hint, which RFC 7662 §2.1 reuses: the guard only ever holds access tokens.
    let hint = TokenTypeHint::AccessToken.as_str().unwrap_or_default();
    let body = format!("token={}&token_type_hint={hint}", form_encode(token));
    let req = http
        .post(endpoint)
        .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    let r = http.send("introspection", endpoint, req).await?;
    let body = r.bytes().await.map_err(|e| GuardError::Unavailable(format!("introspection: {e}")))?;
    AccessTokenClaims::from_introspection(&body).map_err(|e| GuardError::Unavailable(format!("introspection: {e}")))
}
