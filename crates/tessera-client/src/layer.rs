//! A tower layer that puts the bearer token on every request of a tonic channel (or any
//! `http` service), and drops the cached token when the server answers `Unauthenticated` / 401,
//! so the next call gets a fresh one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use crate::TokenSource;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds `Authorization: Bearer` from a [`TokenSource`] — or `Authorization: DPoP` and a
/// fresh proof per call when the source's tokens are DPoP-bound (RFC 9449 §7.1).
#[derive(Clone)]
pub struct BearerLayer {
    source: TokenSource,
    origin: Option<std::sync::Arc<str>>,
}

impl BearerLayer {
    /// A layer using `source`.
    pub fn new(source: TokenSource) -> Self {
        Self { source, origin: None }
    }

    /// The scheme and authority calls go to (`https://greeter.example:443`), for DPoP proofs'
    /// `htu`: a tonic channel adds them to requests after this layer. Requests that carry an
    /// absolute URI use their own.
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into().trim_end_matches('/').into());
        self
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerService { inner, source: self.source.clone(), origin: self.origin.clone() }
    }
}

/// The service [`BearerLayer`] produces.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    source: TokenSource,
    origin: Option<std::sync::Arc<str>>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for BearerService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        let origin = self.origin.clone();
        Box::pin(async move {
            let token = source.token().await?;
            // RFC 9449 §4.2 `htu`: the call's URL (gRPC: POST to https://authority/Service/Method).
            let url = match (req.uri().scheme(), req.uri().authority(), &origin) {
                (Some(scheme), Some(authority), _) => format!("{scheme}://{authority}{}", req.uri().path()),
                (_, _, Some(origin)) => format!("{origin}{}", req.uri().path()),
                _ => req.uri().to_string(),
            };
            let (authorization, proof) = source.authorize(&token, req.method().as_str(), &url)?;
            req.headers_mut().insert(http::header::AUTHORIZATION, HeaderValue::from_str(&authorization)?);
            let dpop = proof.is_some();
            if let Some(proof) = proof {
                req.headers_mut().insert("dpop", HeaderValue::from_str(&proof)?);
            }
            let response = inner.call(req).await.map_err(Into::into)?;
            // RFC 9449 §9: the API's nonce, from any answer, goes in the next proofs. A call
            // refused for want of it cannot be replayed from here (its body is a stream, gone
            // with the call): it fails once, and the caller's retry carries the nonce.
            if dpop {
                source.remember_dpop_nonce(&url, response.headers());
            }
            let asked_for_nonce = response.headers().contains_key("dpop-nonce")
                && response
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(tessera_types::rfc6750::challenge_error)
                    == Some(tessera_types::ErrorCode::UseDpopNonce.as_str());
            let grpc_unauthenticated = response.headers().get("grpc-status").is_some_and(|s| s == "16");
            // The token is fine when only the nonce was missing: keep it.
            if (grpc_unauthenticated || response.status() == http::StatusCode::UNAUTHORIZED) && !asked_for_nonce {
                source.invalidate(&token.access_token);
            }
            Ok(response)
        })
    }
}
