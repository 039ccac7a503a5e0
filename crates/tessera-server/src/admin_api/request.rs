//! What an admin handler is given: the authenticated admin client ([`Admin`]), its JSON body
//! ([`Body`], [`OptionalBody`]) and the path's values ([`Segments`]). Every way these fail is
//! a [`Problem`], so that malformed requests are answered like every other refusal.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use tessera_guard::Principal;
use tessera_store::Store;
use tessera_types::{ClientId, UnixTime};

use crate::random::Random;

use super::AdminState;
use super::problem::Problem;

/// The caller and the state: every admin handler takes one. `actor` is the admin client
/// whose token the guard accepted (RFC 9068 §2.2 `client_id`).
pub struct Admin {
    pub actor: ClientId,
    pub state: AdminState,
    /// The store, recording the changes made through it in the audit trail as
    /// `admin-api:CLIENT_ID`.
    store: Store,
}

impl Admin {
    /// The store the registry is read from and written to, as the actor.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Now, by the server's clock.
    pub fn now(&self) -> UnixTime {
        self.state.0.app.0.clock.now()
    }

    /// The server's randomness (generated secrets and keys).
    pub fn rng(&self) -> &dyn Random {
        &*self.state.0.app.0.rng
    }
}

impl FromRequestParts<AdminState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Problem> {
        // The guard layer put it there; every token Tessera issues names its client.
        let actor =
            parts.extensions.get::<Principal>().and_then(|p| p.client_id.clone()).ok_or(Problem::NoPrincipal)?;
        let app = &state.0.app.0;
        let store = state.0.store.acting_as(format!("admin-api:{actor}"), app.clock.clone());
        Ok(Self { actor, state: state.clone(), store })
    }
}

/// A JSON body of type `T`, required.
pub struct Body<T>(pub T);

/// A JSON body of type `T`, or `T::default()` when the request has none.
pub struct OptionalBody<T>(pub T);

/// `application/json`, or any `application/*+json` (`merge-patch+json` for PATCH).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")))
}

/// The body's bytes, within the admin body limit (a `DefaultBodyLimit` on the admin router),
/// and whether it was declared JSON.
async fn read(req: Request, state: &AdminState) -> Result<(Bytes, bool), Problem> {
    let json = is_json(req.headers());
    let bytes = Bytes::from_request(req, state).await.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::TooLarge(state.0.max_body),
        _ => Problem::MalformedBody(e.body_text()),
    })?;
    Ok((bytes, json))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| Problem::MalformedBody(e.to_string()))
}

impl<T: DeserializeOwned> FromRequest<AdminState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, Problem> {
        let (bytes, json) = read(req, state).await?;
        if !json {
            return Err(Problem::UnsupportedMediaType);
        }
        parse(&bytes).map(Self)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AdminState> for OptionalBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, Problem> {
        let (bytes, json) = read(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(Problem::UnsupportedMediaType);
        }
        parse(&bytes).map(Self)
    }
}

/// The path's values (`{name}`, `{id}`), percent-decoded; parsed further by the handler.
pub struct Segments<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AdminState> for Segments<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e| Problem::Invalid(e.body_text()))
    }
}
