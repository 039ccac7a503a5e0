//! The admin REST API (issue 16): scopes, clients, secrets, signing keys and trusts over
//! JSON, on the server's own listener under `/admin`, protected by the server's own tokens
//! (dogfooding): the guard validates them in process ([`tessera_guard::Mode::InProcess`]),
//! so DPoP- and certificate-bound tokens are held to their binding here as at any API.
//!
//! - Who may call: a client allowed a built-in scope ([`builtin`]): `tessera:admin` for
//!   everything, `tessera:AREA:read|write` for one area. Its tokens carry the audience
//!   [`ADMIN_RESOURCE`]. JWT and reference tokens alike (the lookup is the introspection
//!   endpoint's).
//! - What it does: what the CLI does, through the same functions ([`crate::admin`],
//!   [`crate::federation::trusts`], [`crate::keys`]); files the CLI reads become inline
//!   JSON (`jwks`, `tls_client_certs`), and paths on the server's disk are refused.
//! - How it fails: [`problem::Problem`], RFC 9457 problem details; 401/403 are the guard's
//!   RFC 6750 challenges.
//! - What describes it: [`OPENAPI`], committed beside this file and served at
//!   `GET /admin/openapi.json` without a token (it holds nothing secret); a test holds it to
//!   the route table [`Op`].

pub mod builtin;
mod clients;
mod keys;
pub mod problem;
mod request;
mod scopes;
mod trusts;
pub mod views;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler as _;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on};
use serde_json::Map;
use tessera_guard::{Guard, GuardConfig, GuardError, GuardLayer, InProcess, Mode, Policy};
use tessera_store::Store;
use tessera_types::Resource;
use tessera_types::rfc9068::AccessTokenClaims;

pub use builtin::{ADMIN_RESOURCE, AdminScope, Area};

use crate::client_keys::KeyBounds;
use crate::state::AppState;
use crate::token::lookup;
use crate::transport::PeerAddr;

/// The OpenAPI 3.1 document of the admin API, committed as `openapi.json` beside this file.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Where the OpenAPI document is served (no token needed).
pub const OPENAPI_PATH: &str = "/admin/openapi.json";

/// What the admin handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AdminState(Arc<Inner>);

struct Inner {
    app: AppState,
    store: Store,
    /// The server's default access token lifetime, for clients registered without one.
    default_lifetime: i64,
    /// Bounds on the keys and certificates a client may register.
    key_bounds: KeyBounds,
    /// When signing keys rotate (`POST /admin/keys/rotate` forces the next step).
    key_rotation: crate::rotation::RotationPolicy,
    /// Largest body read, bytes.
    max_body: usize,
}

/// How the admin API is set up: from the server's settings.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Default access token lifetime, seconds.
    pub default_lifetime: i64,
    /// Bounds on clients' keys and certificates (`limits.max_client_keys`,
    /// `limits.max_client_jwks_bytes`).
    pub key_bounds: KeyBounds,
    /// When signing keys rotate.
    pub key_rotation: crate::rotation::RotationPolicy,
}

impl AdminSettings {
    /// Largest admin request body: room for an inline JWK Set and a few certificates, each
    /// at its own bound (`limits.max_client_jwks_bytes`), and the rest of a client; 256 KiB
    /// by default.
    pub fn max_body(&self) -> usize {
        self.key_bounds.max_bytes.saturating_mul(4)
    }
}

/// One admin operation: its method, path and the built-in scope it needs. The router is
/// built from this table, and a test holds the OpenAPI document to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    ListScopes,
    AddScope,
    GetScope,
    RemoveScope,
    ListClients,
    AddClient,
    GetClient,
    UpdateClient,
    RemoveClient,
    AddSecret,
    ExpireSecret,
    RemoveSecret,
    ListKeys,
    RotateKey,
    ListTrusts,
    AddTrust,
    GetTrust,
    RemoveTrust,
    AddRule,
    RemoveRule,
}

impl Op {
    /// Every operation.
    pub const ALL: [Self; 20] = [
        Self::ListScopes,
        Self::AddScope,
        Self::GetScope,
        Self::RemoveScope,
        Self::ListClients,
        Self::AddClient,
        Self::GetClient,
        Self::UpdateClient,
        Self::RemoveClient,
        Self::AddSecret,
        Self::ExpireSecret,
        Self::RemoveSecret,
        Self::ListKeys,
        Self::RotateKey,
        Self::ListTrusts,
        Self::AddTrust,
        Self::GetTrust,
        Self::RemoveTrust,
        Self::AddRule,
        Self::RemoveRule,
    ];

    /// Method, path (`{name}` for a path value, as axum and OpenAPI both write it) and the
    /// scope needed.
    pub fn route(self) -> (Method, &'static str, AdminScope) {
        use AdminScope::{Read, Write};
        use Area::*;
        match self {
            Self::ListScopes => (Method::GET, "/admin/scopes", Read(Scopes)),
            Self::AddScope => (Method::POST, "/admin/scopes", Write(Scopes)),
            Self::GetScope => (Method::GET, "/admin/scopes/{name}", Read(Scopes)),
            Self::RemoveScope => (Method::DELETE, "/admin/scopes/{name}", Write(Scopes)),
            Self::ListClients => (Method::GET, "/admin/clients", Read(Clients)),
            Self::AddClient => (Method::POST, "/admin/clients", Write(Clients)),
            Self::GetClient => (Method::GET, "/admin/clients/{client_id}", Read(Clients)),
            Self::UpdateClient => (Method::PATCH, "/admin/clients/{client_id}", Write(Clients)),
            Self::RemoveClient => (Method::DELETE, "/admin/clients/{client_id}", Write(Clients)),
            Self::AddSecret => (Method::POST, "/admin/clients/{client_id}/secrets", Write(Clients)),
            Self::ExpireSecret => (Method::PATCH, "/admin/clients/{client_id}/secrets/{secret_id}", Write(Clients)),
            Self::RemoveSecret => (Method::DELETE, "/admin/clients/{client_id}/secrets/{secret_id}", Write(Clients)),
            Self::ListKeys => (Method::GET, "/admin/keys", Read(Keys)),
            Self::RotateKey => (Method::POST, "/admin/keys/rotate", Write(Keys)),
            Self::ListTrusts => (Method::GET, "/admin/trusts", Read(Trusts)),
            Self::AddTrust => (Method::POST, "/admin/trusts", Write(Trusts)),
            Self::GetTrust => (Method::GET, "/admin/trusts/{name}", Read(Trusts)),
            Self::RemoveTrust => (Method::DELETE, "/admin/trusts/{name}", Write(Trusts)),
            Self::AddRule => (Method::POST, "/admin/trusts/{name}/rules", Write(Trusts)),
            Self::RemoveRule => (Method::DELETE, "/admin/trusts/{name}/rules/{id}", Write(Trusts)),
        }
    }

    /// What the guard requires: any scope that allows the operation.
    pub fn policy(self) -> Policy {
        Policy::any_of(self.route().2.satisfied_by().into_iter().map(AdminScope::name))
    }

    /// The handler, behind `guard` with the operation's policy.
    fn endpoint(self, guard: &Guard) -> MethodRouter<AdminState> {
        let (method, _, _) = self.route();
        let filter = MethodFilter::try_from(method).expect("admin methods are standard");
        let layer = GuardLayer::new(guard.clone()).require(self.policy());
        // One arm per operation: an operation without a handler does not compile.
        macro_rules! guarded {
            ($handler:path) => {
                on(filter, $handler.layer(layer))
            };
        }
        match self {
            Self::ListScopes => guarded!(scopes::list),
            Self::AddScope => guarded!(scopes::add),
            Self::GetScope => guarded!(scopes::show),
            Self::RemoveScope => guarded!(scopes::remove),
            Self::ListClients => guarded!(clients::list),
            Self::AddClient => guarded!(clients::add),
            Self::GetClient => guarded!(clients::show),
            Self::UpdateClient => guarded!(clients::update),
            Self::RemoveClient => guarded!(clients::remove),
            Self::AddSecret => guarded!(clients::add_secret),
            Self::ExpireSecret => guarded!(clients::expire_secret),
            Self::RemoveSecret => guarded!(clients::remove_secret),
            Self::ListKeys => guarded!(keys::list),
            Self::RotateKey => guarded!(keys::rotate),
            Self::ListTrusts => guarded!(trusts::list),
            Self::AddTrust => guarded!(trusts::add),
            Self::GetTrust => guarded!(trusts::show),
            Self::RemoveTrust => guarded!(trusts::remove),
            Self::AddRule => guarded!(trusts::add_rule),
            Self::RemoveRule => guarded!(trusts::remove_rule),
        }
    }
}

/// The admin API for the app `app` serves; `None` when the app has no store behind its
/// registry (the endpoint tests' fixed registry).
pub fn router(app: AppState, settings: &AdminSettings) -> Option<Router> {
    let store = app.0.registry.source()?.0.clone();
    let guard = own_guard(&app);
    let state = AdminState(Arc::new(Inner {
        store,
        default_lifetime: settings.default_lifetime,
        key_bounds: settings.key_bounds,
        key_rotation: settings.key_rotation,
        max_body: settings.max_body(),
        app,
    }));
    let mut router = Router::new();
    for op in Op::ALL {
        router = router.route(op.route().1, op.endpoint(&guard));
    }
    let router = router
        .layer(axum::middleware::from_fn_with_state(state.clone(), present_certificate))
        .route(OPENAPI_PATH, get(openapi))
        // Bodies are read whole (JSON); past the bound, 413 before more is read.
        .layer(DefaultBodyLimit::max(settings.max_body()))
        .with_state(state);
    Some(router)
}

/// A guard for the server's own tokens: the issuer is this server, the audience
/// [`ADMIN_RESOURCE`], and the token lookup is the one introspection uses, in process.
fn own_guard(app: &AppState) -> Guard {
    let s = &app.0;
    let lookup = {
        let app = app.clone();
        move |token: String| {
            let app = app.clone();
            async move { own_token(&app, &token).await }
        }
    };
    let cfg = GuardConfig::new(
        s.issuer.clone(),
        Resource::new(ADMIN_RESOURCE).expect("a valid resource"),
        Mode::InProcess(InProcess::new(lookup)),
    )
    .with_clock(s.clock.clone())
    // RFC 9449 §4.3: a DPoP proof names the URL the client called, the issuer's.
    .with_public_base_url(s.issuer.as_str());
    Guard::new(cfg).expect("an in-process guard needs nothing that can fail")
}

/// What the server knows of `token`: active and ours, as introspection would say (JWT or
/// reference token, revocations, its client still enabled), or nothing.
async fn own_token(app: &AppState, token: &str) -> Result<Option<AccessTokenClaims>, GuardError> {
    let s = &app.0;
    // Garbage costs no store read: the admin API answers anyone who sends a token.
    if !crate::token::reference::looks_like_jwt(token) && !crate::token::reference::looks_like_reference(token) {
        return Ok(None);
    }
    // As at the token endpoint: a registry the store has not confirmed for too long may no
    // longer know that a client was disabled.
    let registry = s.registry.fresh().ok_or_else(|| GuardError::Unavailable("registry stale".into()))?;
    let found = lookup::active(&*s.stores.lookup, &s.issuer, &registry, token, s.clock.now())
        .await
        .map_err(|e| GuardError::Unavailable(e.description.into_owned()))?;
    Ok(found.map(|t| AccessTokenClaims {
        iss: Some(s.issuer.as_str().to_owned()),
        aud: t.aud.iter().map(|a| a.as_str().to_owned()).collect(),
        exp: t.exp,
        nbf: Some(t.nbf),
        iat: Some(t.iat),
        sub: Some(t.sub),
        jti: Some(t.jti),
        client_id: Some(t.client_id),
        scope: t.scope,
        scp: Default::default(),
        cnf: t.cnf,
        other: Map::new(),
    }))
}

/// RFC 8705 §3: a certificate-bound admin token passes only with its certificate. The
/// guard reads the connection's certificate (or the one a trusted proxy forwarded, as at the
/// token endpoint) from the request's extensions, in its own type.
async fn present_certificate(State(state): State<AdminState>, mut req: Request, next: Next) -> Response {
    let s = &state.0.app.0;
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let presented = s.mtls.request_certificate(
        req.headers(),
        peer,
        req.extensions().get::<crate::certificate::ClientCertificate>(),
    );
    if let Some(c) = presented {
        req.extensions_mut().insert(tessera_guard::ClientCertificate::from_der(c.leaf_der()));
    }
    next.run(req).await
}

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl AdminState {
    /// Loads the registry now, so that what a request changed is served at once (a
    /// new client gets tokens on its first try) rather than at the next poll.
    async fn reload(&self) {
        if let Err(e) = self.0.app.0.registry.refresh().await {
            tracing::warn!(error = %e, "admin API: registry reload failed; the poller will retry");
        }
    }
}

/// `text` as one path segment of a `Location` (RFC 3986 §3.3 pchar; the rest
/// percent-encoded), so that a name holding `/` or `?` still names one resource.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
