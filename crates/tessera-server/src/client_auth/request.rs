//! The [`ClientRequest`] extractor of the client-authenticated endpoints: the early gate,
//! the form body read once, and authentication on demand.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use tessera_store::ClientRecord;
use tessera_types::rfc8705::Confirmation;
use tessera_types::{Endpoint, ErrorCode, Permission};

use super::{AuthorizationHeader, ClientAuthMethod, gate, presented, verify};
use crate::certificate::ClientCertificate;
use crate::error::OAuthError;
use crate::form::{Form, read_body, require_content_type, require_form_content_type};
use crate::registry::Registry;
use crate::state::AppState;
use crate::transport::PeerAddr;

/// A client-authenticated endpoint: the permission it requires and the form parameters it
/// lets repeat (RFC 6749 §3.2: "MUST NOT be included more than once", unless an extension
/// such as RFC 8707 `resource` says otherwise).
pub(crate) trait ClientEndpoint: Send + Sync + 'static {
    const ENDPOINT: Endpoint;
    const REPEATABLE: &'static [&'static str];
    /// The body is JSON, not a form (RFC 8936 §2.4): the client then authenticates through
    /// the `Authorization` header only.
    const JSON_BODY: bool = false;
}

/// `POST /connect/token`.
pub(crate) struct TokenEndpoint;
/// `POST /connect/introspect`.
pub(crate) struct IntrospectionEndpoint;
/// `POST /connect/revoke`.
pub(crate) struct RevocationEndpoint;
/// `POST /connect/events`.
pub(crate) struct EventsEndpoint;

impl ClientEndpoint for TokenEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Token;
    // RFC 8707 §2: `resource` may be repeated.
    const REPEATABLE: &'static [&'static str] = &["resource"];
}

impl ClientEndpoint for IntrospectionEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Introspection;
    const REPEATABLE: &'static [&'static str] = &[];
}

impl ClientEndpoint for RevocationEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Revocation;
    const REPEATABLE: &'static [&'static str] = &[];
}

impl ClientEndpoint for EventsEndpoint {
    const ENDPOINT: Endpoint = Endpoint::Events;
    const REPEATABLE: &'static [&'static str] = &[];
    const JSON_BODY: bool = true;
}

/// A request to endpoint `E`, read but not yet authenticated: handlers check their own
/// parameters first and then call [`ClientRequest::authenticate`], so which error a request
/// with several faults gets is the same as it always was.
pub(crate) struct ClientRequest<E> {
    form: Form,
    /// The body, when it is JSON.
    json: Option<axum::body::Bytes>,
    authorization: AuthorizationHeader,
    peer: Option<IpAddr>,
    certificate: Option<ClientCertificate>,
    dpop: DpopHeader,
    endpoint: PhantomData<E>,
}

/// The request's `DPoP` header (RFC 9449 §4.1): at most one is allowed (§4.3 item 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DpopHeader {
    Absent,
    One(String),
    Several,
}

impl DpopHeader {
    fn read(headers: &axum::http::HeaderMap) -> Self {
        let mut values = headers.get_all("dpop").iter();
        match (values.next(), values.next()) {
            (None, _) => Self::Absent,
            (Some(v), None) => v.to_str().map_or(Self::Several, |v| Self::One(v.to_owned())),
            (Some(_), Some(_)) => Self::Several,
        }
    }
}

/// A client that proved its identity, with the registry snapshot it was found in (later
/// reads in the same request see the same registry).
pub(crate) struct Authenticated {
    pub client: Arc<ClientRecord>,
    pub method: ClientAuthMethod,
    /// The certificate a mutual-TLS client authenticated with.
    pub certificate: Option<ClientCertificate>,
    /// Identified by a JWT bearer grant's assertion (RFC 7523 §2.1), not by client
    /// authentication: the only way a `jwt-bearer` grant may be authorized.
    pub by_assertion_grant: bool,
    /// The workload a trust's rule identified the client by (issue 15).
    pub workload: Option<tessera_types::rfc9068::Workload>,
    pub registry: Arc<Registry>,
}

impl Authenticated {
    /// What tokens issued to this caller are bound to: RFC 8705 §3, the certificate of a
    /// client that authenticated by mutual TLS.
    pub(crate) fn confirmation(&self) -> Option<Confirmation> {
        self.certificate
            .as_ref()
            .filter(|_| self.method.uses_certificate())
            .map(|c| Confirmation::certificate(c.thumbprint().clone()))
    }
}

/// The peer's address bucket, when the request came through the listener (tests driving the
/// router directly have none, and are then limited per client id only).
fn peer(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<PeerAddr>().map(|p| crate::transport::bucket(p.0.ip()))
}

impl<E: ClientEndpoint> FromRequest<AppState> for ClientRequest<E> {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let s = &state.0;
        let (parts, body) = request.into_parts();
        let peer = peer(&parts);
        let certificate = s.mtls.request_certificate(
            &parts.headers,
            parts.extensions.get::<PeerAddr>().map(|p| p.0.ip()),
            parts.extensions.get::<ClientCertificate>(),
        );
        let authorization = AuthorizationHeader::parse(&parts.headers);
        // Someone backing off is refused before their body is read.
        gate::early_gate(&s.registry.get(), &s.verifier, &s.failures, authorization.basic(), peer, s.clock.now())?;
        if E::JSON_BODY {
            require_content_type(&parts.headers, "application/json")?;
            let bytes = read_body(&parts.headers, body, s.max_body_bytes).await?;
            let form = Form::parse(b"")?;
            let dpop = DpopHeader::read(&parts.headers);
            return Ok(Self { form, json: Some(bytes), authorization, peer, certificate, dpop, endpoint: PhantomData });
        }
        require_form_content_type(&parts.headers)?;
        let bytes = read_body(&parts.headers, body, s.max_body_bytes).await?;
        let form = Form::parse(&bytes)?;
        form.reject_repeats(E::REPEATABLE)?;
        let dpop = DpopHeader::read(&parts.headers);
        Ok(Self { form, json: None, authorization, peer, certificate, dpop, endpoint: PhantomData })
    }
}

impl<E: ClientEndpoint> ClientRequest<E> {
    pub(crate) fn form(&self) -> &Form {
        &self.form
    }

    /// The request's `DPoP` header.
    pub(crate) fn dpop(&self) -> &DpopHeader {
        &self.dpop
    }

    /// The JSON body of an endpoint that takes one.
    pub(crate) fn json(&self) -> &[u8] {
        self.json.as_deref().unwrap_or_default()
    }

    /// Authenticates the client (RFC 6749 §2.3) and requires its permission for `E`.
    pub(crate) async fn authenticate(&self, state: &AppState) -> Result<Authenticated, OAuthError> {
        let result = self.authenticate_counted(state).await;
        if let Err(OAuthError { auth_failure: Some(failure), .. }) = &result {
            state.0.metrics.auth_failure(failure.0, &failure.1);
        }
        result
    }

    async fn authenticate_counted(&self, state: &AppState) -> Result<Authenticated, OAuthError> {
        let s = &state.0;
        let creds = presented(&self.authorization, &self.form, self.certificate.as_ref(), s.assertion.max_bytes)?;
        let registry = s.registry.fresh().ok_or_else(|| {
            tracing::error!("registry snapshot is stale: the store has not confirmed it within registry_max_stale_ms");
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization server cannot reach its store; retry shortly",
            )
            .with_retry_after(1)
            .limited_by(crate::metrics::Limited::RegistryStale)
        })?;
        let (client, method, workload) = verify(&registry, s, &creds, self.peer).await?;
        let client = client.clone();
        if !client.permissions.contains(&Permission::Endpoint(E::ENDPOINT)) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("the client may not use the {} endpoint", E::ENDPOINT.as_str()),
            ));
        }
        let by_assertion_grant = matches!(creds.proof, super::Proof::Federated { grant: true, .. });
        let certificate = match creds.proof {
            super::Proof::Certificate(c) => Some(c),
            _ => None,
        };
        Ok(Authenticated { client, method, certificate, by_assertion_grant, workload, registry })
    }
}
