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

/// Adds `Authorization: Bearer` from a [`TokenSource`].
#[derive(Clone)]
pub struct BearerLayer {
    source: TokenSource,
}

impl BearerLayer {
    /// A layer using `source`.
    pub fn new(source: TokenSource) -> Self {
        Self { source }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerService { inner, source: self.source.clone() }
    }
}

/// The service [`BearerLayer`] produces.
#[derive(Clone)]
pub struct BearerService<S> {
    inner: S,
    source: TokenSource,
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
        Box::pin(async move {
            let token = source.token().await?;
            let value = HeaderValue::from_str(&format!("Bearer {}", token.access_token.expose()))?;
            req.headers_mut().insert(http::header::AUTHORIZATION, value);
            let response = inner.call(req).await.map_err(Into::into)?;
            let grpc_unauthenticated = response.headers().get("grpc-status").is_some_and(|s| s == "16");
            if grpc_unauthenticated || response.status() == http::StatusCode::UNAUTHORIZED {
                source.invalidate(&token.access_token);
            }
            Ok(response)
        })
    }
}
