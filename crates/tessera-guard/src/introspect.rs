//! RFC 7662 introspection from the resource server's side.

use tessera_http::{basic_credentials, form_encode};
use tessera_types::rfc7009::TokenTypeHint;
use tessera_types::rfc9068::AccessTokenClaims;

use crate::http::AuthorityHttp;
use crate::{ClientCredentials, GuardError};

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
    // RFC 7009 §2.1's hint, which RFC 7662 §2.1 reuses: the guard only ever holds access tokens.
    let hint = TokenTypeHint::AccessToken.as_str().unwrap_or_default();
    let body = format!("token={}&token_type_hint={hint}", form_encode(token));
    let req = http
        .post(endpoint)
        .header(http::header::AUTHORIZATION, basic_credentials(&creds.client_id, &creds.client_secret))
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    let r = http.send("introspection", endpoint, req).await?;
    let body = r.bytes().await.map_err(|e| GuardError::Unavailable(format!("introspection: {e}")))?;
    AccessTokenClaims::from_introspection(&body).map_err(|e| GuardError::Unavailable(format!("introspection: {e}")))
}
