//! Protocol errors: one closed enum of RFC codes ([`ErrorCode`]), rendered here and only
//! here (status, JSON body, `WWW-Authenticate`, `Cache-Control: no-store`). Internal causes
//! are logged, never sent.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_types::ErrorCode;
use tessera_types::rfc6749::ErrorResponse;

/// An OAuth 2.0 error response (RFC 6749 §5.2).
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// The RFC 6749 §5.2 (or extension) error code: the closed set a client can match on.
    pub code: ErrorCode,
    /// Text for the developer; must be safe to show to anyone.
    pub description: Cow<'static, str>,
    /// Whether the client tried HTTP Basic authentication (RFC 6749 §5.2: then a 401 carries
    /// `WWW-Authenticate` matching the scheme used).
    pub basic_challenge: bool,
    /// Overrides the status (413 for an oversized body, 429 past a rate limit).
    pub status: Option<StatusCode>,
    /// Seconds after which a retry may succeed (RFC 9110 §10.2.3 `Retry-After`), for 429
    /// and 503 answers.
    pub retry_after: Option<u64>,
    /// RFC 9449 §8: the nonce a DPoP proof must carry (`DPoP-Nonce`).
    pub dpop_nonce: Option<String>,
    /// The limit that refused the request, for the metrics: carried in the response's
    /// extensions (never on the wire) to the listener, which counts it.
    pub(crate) limited: Option<crate::metrics::Limited>,
    /// Why a client authentication failed, for the metrics: `(method, reason)`, the reason a
    /// variant name of the method's closed failure enum.
    pub(crate) auth_failure: Option<Box<(&'static str, String)>>,
    /// A store error caused it (counted by the listener, like `limited`).
    pub(crate) store_error: bool,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            status: None,
            retry_after: None,
            dpop_nonce: None,
            limited: None,
            auth_failure: None,
            store_error: false,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `server_error`, logging the cause.
    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorCode::ServerError, "internal error")
    }

    /// `temporarily_unavailable` (503), logging the cause: the store cannot answer what must be
    /// checked, so no answer is given rather than a wrong one.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "store unavailable");
        let mut e = Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the authorization server cannot reach its store; retry shortly",
        )
        .with_retry_after(1);
        e.store_error = true;
        e
    }

    /// Adds the Basic challenge.
    pub fn with_basic_challenge(mut self, yes: bool) -> Self {
        self.basic_challenge = yes;
        self
    }

    #[allow(missing_docs)]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds `Retry-After` (RFC 9110 §10.2.3), for 429 and 503 answers.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Tags the answer as a limit's refusal (see [`OAuthError::limited`]).
    pub(crate) fn limited_by(mut self, limit: crate::metrics::Limited) -> Self {
        self.limited = Some(limit);
        self
    }

    /// Tags the answer as a failed client authentication of `method`, for `reason` (a
    /// variant of the method's failure enum; counted by `ClientRequest::authenticate`).
    pub(crate) fn with_auth_failure(mut self, method: &'static str, reason: &dyn std::fmt::Debug) -> Self {
        self.auth_failure = Some(Box::new((method, format!("{reason:?}"))));
        self
    }

    /// Adds `DPoP-Nonce` (RFC 9449 §8.1).
    pub fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce);
        self
    }

    fn status(&self) -> StatusCode {
        if let Some(s) = self.status {
            return s;
        }
        match self.code {
            // §5.2: "invalid_client ... MAY return an HTTP 401"; with Basic it MUST.
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// §5.2: error_description "MUST NOT include characters outside the set
/// %x20-21 / %x23-5B / %x5D-7E".
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\x20' || c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Headers every token-endpoint response carries (RFC 6749 §5.1).
pub(crate) fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorResponse { error: self.code, error_description: Some(sanitize(&self.description)) };
        let mut response = (status, axum::Json(body)).into_response();
        no_store(&mut response);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(nonce) = self.dpop_nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            response.headers_mut().insert(crate::token::dpop::NONCE_HEADER, nonce);
        }
        if let Some(limit) = self.limited {
            response.extensions_mut().insert(limit);
        }
        if self.store_error {
            response.extensions_mut().insert(crate::metrics::StoreOp::Request);
        }
        if status == StatusCode::UNAUTHORIZED && self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_5_2_description_charset() {
        assert_eq!(sanitize("a\"b\\c\né"), "a?b?c??");
    }
}
