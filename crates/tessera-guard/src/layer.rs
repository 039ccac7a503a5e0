//! The tower layer: one for axum (HTTP) and tonic (gRPC) alike. It reads the bearer token
//! (RFC 6750 §2.1, the Authorization header only), validates it, applies the policy of the
//! route or gRPC method, puts the [`Principal`] in the request extensions, and otherwise
//! answers itself: RFC 6750 §3 over HTTP, gRPC status codes over gRPC.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::{Layer, Service};

use crate::{Guard, GuardError, Policy};

/// Protects every request that reaches it, with per-path policies. Paths are exact: an HTTP
/// route (`/weatherforecast`) or a gRPC method (`/greet.Greeter/SayHello`).
#[derive(Clone, Debug)]
pub struct GuardLayer {
    guard: Guard,
    default: Option<Policy>,
    routes: Arc<HashMap<String, Option<Policy>>>,
    realm: Arc<str>,
}

impl GuardLayer {
    /// Every path requires a valid token, no particular scope, until told otherwise.
    pub fn new(guard: Guard) -> Self {
        let realm = guard.config().audience.as_str().into();
        Self { guard, default: Some(Policy::Authenticated), routes: Arc::default(), realm }
    }

    /// The policy of paths without one of their own.
    pub fn require(mut self, policy: Policy) -> Self {
        self.default = Some(policy);
        self
    }

    /// The policy of one path.
    pub fn route(mut self, path: impl Into<String>, policy: Policy) -> Self {
        Arc::make_mut(&mut self.routes).insert(path.into(), Some(policy));
        self
    }

    /// A path anyone may call without a token (e.g. a health page).
    pub fn public(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.routes).insert(path.into(), None);
        self
    }

    fn policy_for(&self, path: &str) -> Option<Policy> {
        match self.routes.get(path) {
            Some(p) => p.clone(),
            None => self.default.clone(),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, layer: self.clone() }
    }
}

/// The service [`GuardLayer`] wraps around yours.
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    inner: S,
    layer: GuardLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for GuardService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let Some(policy) = self.layer.policy_for(req.uri().path()) else {
            return Box::pin(self.inner.call(req));
        };
        // The inner service that was polled ready is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.layer.guard.clone();
        let realm = self.layer.realm.clone();
        Box::pin(async move {
            let grpc = is_grpc(&req);
            // Owned, so the request is not borrowed across the await (bodies need not be Sync).
            let token = bearer(req.headers()).map(str::to_owned);
            let outcome = async {
                let principal = guard.authenticate(&token?).await?;
                policy.check(&principal).map_err(GuardError::InsufficientScope)?;
                Ok::<_, GuardError>(principal)
            }
            .await;
            match outcome {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    inner.call(req).await
                }
                Err(e) => {
                    if let GuardError::Unavailable(why) = &e {
                        tracing::error!(%why, "failing closed: cannot validate tokens");
                    } else {
                        tracing::debug!(error = %e, "request refused");
                    }
                    Ok(if grpc { grpc_refusal(&e) } else { http_refusal(&e, &realm) })
                }
            }
        })
    }
}

fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// RFC 6750 §2.1: `Authorization: Bearer b64token`, b64token = 1*( ALPHA / DIGIT / "-" /
/// "." / "_" / "~" / "+" / "/" ) *"=".
fn bearer(headers: &http::HeaderMap) -> Result<&str, GuardError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Err(GuardError::Missing) };
    if values.next().is_some() {
        return Err(GuardError::Malformed);
    }
    let value = value.to_str().map_err(|_| GuardError::Malformed)?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(if value.eq_ignore_ascii_case("bearer") { GuardError::Malformed } else { GuardError::Missing });
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme is not a bearer token at all.
        return Err(GuardError::Missing);
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'));
    if ok { Ok(token) } else { Err(GuardError::Malformed) }
}

/// Text allowed in a quoted-string of `WWW-Authenticate` (RFC 6750 §3: no `"` or `\`).
fn quoted(text: &str) -> String {
    text.chars().map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '?' }).collect()
}

fn http_refusal<B: Default>(e: &GuardError, realm: &str) -> Response<B> {
    let (status, detail) = match e {
        // §3.1: "If the request lacks any authentication information ... the resource server
        // SHOULD NOT include an error code".
        GuardError::Missing => (StatusCode::UNAUTHORIZED, None),
        GuardError::Malformed => {
            (StatusCode::BAD_REQUEST, Some("error_description=\"malformed bearer credentials\"".to_owned()))
        }
        GuardError::InvalidToken(why) => {
            (StatusCode::UNAUTHORIZED, Some(format!("error_description=\"{}\"", quoted(why))))
        }
        GuardError::InsufficientScope(scope) => {
            (StatusCode::FORBIDDEN, Some(format!("scope=\"{}\"", quoted(&scope.to_string()))))
        }
        // The authority, not the token, failed: no challenge.
        GuardError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut r = Response::new(B::default());
    *r.status_mut() = status;
    if status != StatusCode::SERVICE_UNAVAILABLE {
        // §3: the realm, then the §3.1 code (from `GuardError::bearer_error`) and its detail.
        let mut challenge = format!("Bearer realm=\"{}\"", quoted(realm));
        if let Some(code) = e.bearer_error() {
            challenge.push_str(&format!(", error=\"{code}\""));
        }
        if let Some(detail) = detail {
            challenge.push_str(&format!(", {detail}"));
        }
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).expect("ASCII header"));
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A trailers-only gRPC response: HTTP 200 with `grpc-status` in the headers.
fn grpc_refusal<B: Default>(e: &GuardError) -> Response<B> {
    let (code, message) = match e {
        GuardError::Missing => ("16", "missing bearer token".to_owned()),
        GuardError::Malformed => ("16", "malformed bearer credentials".to_owned()),
        GuardError::InvalidToken(why) => ("16", format!("invalid token: {why}")),
        GuardError::InsufficientScope(scope) => ("7", format!("insufficient scope, requires: {scope}")),
        GuardError::Unavailable(_) => ("14", "authorization server unavailable".to_owned()),
    };
    let mut r = Response::new(B::default());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static(code));
    let message: String = message.chars().map(|c| if (' '..='~').contains(&c) && c != '%' { c } else { '?' }).collect();
    h.insert("grpc-message", HeaderValue::from_str(&message).expect("ASCII header"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_2_1_bearer_syntax() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer(&http::HeaderMap::new()), Err(GuardError::Missing));
        assert_eq!(bearer(&h("Bearer abc.def-_~+/==")), Ok("abc.def-_~+/=="));
        assert_eq!(bearer(&h("bearer abc")), Ok("abc"));
        assert_eq!(bearer(&h("Basic abc")), Err(GuardError::Missing));
        assert_eq!(bearer(&h("Bearer")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer ")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer a b")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer a\"b")), Err(GuardError::Malformed));
    }

    #[test]
    fn rfc6750_3_challenges_carry_the_3_1_codes() {
        let challenge = |e: GuardError| {
            let r: Response<()> = http_refusal(&e, "api");
            let h = r.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), h)
        };
        assert_eq!(challenge(GuardError::Missing), (401, Some(r#"Bearer realm="api""#.into())));
        assert_eq!(
            challenge(GuardError::Malformed),
            (
                400,
                Some(
                    r#"Bearer realm="api", error="invalid_request", error_description="malformed bearer credentials""#
                        .into()
                )
            )
        );
        assert_eq!(
            challenge(GuardError::InvalidToken("expired".into())),
            (401, Some(r#"Bearer realm="api", error="invalid_token", error_description="expired""#.into()))
        );
        let scopes = tessera_types::ScopeSet::parse("b a").unwrap();
        assert_eq!(
            challenge(GuardError::InsufficientScope(scopes)),
            (403, Some(r#"Bearer realm="api", error="insufficient_scope", scope="a b""#.into()))
        );
        assert_eq!(challenge(GuardError::Unavailable("down".into())), (503, None));
    }
}
