//! `/.well-known/jwks`: the JWK Set (RFC 7517 §5) of public signing keys — active keys and
//! retired ones whose tokens may still be in use. Never a private member.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.0.registry.get().jwks_json().to_string();
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
