//! Why an admin request failed: a closed set, rendered here and only here as RFC 9457
//! problem details (`application/problem+json`). Refusals by the guard (401, 403) are not
//! problems: they are RFC 6750 challenges, rendered by the guard layer.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_store::StoreError;

use crate::admin::AdminError;

/// RFC 9457 §3: the media type of a problem details document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Longest `detail` sent: enough for any refusal, short of echoing a large body back.
const MAX_DETAIL: usize = 512;

/// Why an admin request failed.
#[derive(Debug)]
pub enum Problem {
    /// The body is not JSON of the expected shape (400).
    MalformedBody(String),
    /// A value was refused: out of range, inconsistent, naming something that does not exist
    /// (400).
    Invalid(String),
    /// The resource the path names does not exist (404).
    NotFound(String),
    /// It exists already, or is built in and cannot change (409).
    Conflict(String),
    /// The body is larger than the admin API reads (413).
    TooLarge(usize),
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// The request carried no authenticated client: the guard did not run (500; never
    /// happens behind the router).
    NoPrincipal,
    /// The store cannot answer now (503, the cause logged).
    Unavailable,
    /// Anything else (500, the cause logged).
    Internal,
}

impl Problem {
    /// The store failed: logged here, never sent.
    pub fn store(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "admin API: store unavailable");
        Self::Unavailable
    }

    /// An internal failure: logged here, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "admin API: internal error");
        Self::Internal
    }

    /// The RFC 9457 §3.1 members: `type` (an identifier, not a link: one per variant, so a
    /// client matches on it), status, `title`, and the `detail` of this occurrence.
    fn parts(&self) -> (&'static str, StatusCode, &'static str, Option<String>) {
        match self {
            Self::MalformedBody(d) => (
                "malformed-body",
                StatusCode::BAD_REQUEST,
                "The body is not valid JSON of the expected shape",
                Some(d.clone()),
            ),
            Self::Invalid(d) => ("invalid-value", StatusCode::BAD_REQUEST, "A value was refused", Some(d.clone())),
            Self::NotFound(d) => ("not-found", StatusCode::NOT_FOUND, "No such resource", Some(d.clone())),
            Self::Conflict(d) => ("conflict", StatusCode::CONFLICT, "Conflict with the current state", Some(d.clone())),
            Self::TooLarge(max) => (
                "body-too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The body is too large",
                Some(format!("the admin API reads at most {max} bytes")),
            ),
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The body must be application/json",
                None,
            ),
            Self::NoPrincipal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None),
            Self::Unavailable => (
                "store-unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The authorization server cannot reach its store; retry shortly",
                None,
            ),
            Self::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (kind, status, title, detail) = self.parts();
        let mut body = json!({
            "type": format!("urn:tessera:problem:{kind}"),
            "title": title,
            "status": status.as_u16(),
        });
        if let Some(mut detail) = detail {
            if detail.len() > MAX_DETAIL {
                let cut = (0..=MAX_DETAIL).rev().find(|i| detail.is_char_boundary(*i)).unwrap_or(0);
                detail.truncate(cut);
                detail.push('…');
            }
            body["detail"] = detail.into();
        }
        let mut r = (status, Json(body)).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            // The store's own consistency checks (a key set and a jwks_uri at once, ...).
            StoreError::Config(why) => Self::Invalid(why),
            other => Self::store(other),
        }
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(v) => Self::Invalid(v.to_string()),
            AdminError::Refused(why) => Self::Invalid(why),
            AdminError::Store(e) => e.into(),
        }
    }
}

impl From<crate::keys::KeyError> for Problem {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::Store(e) => e.into(),
            other => Self::internal(other),
        }
    }
}
