//! The tower layer: one for axum (HTTP) and tonic (gRPC) alike. It reads the access token
//! (the Authorization header only: RFC 6750 §2.1 `Bearer`, or RFC 9449 §7.1 `DPoP` with the
//! request's `DPoP` proof header), validates it, applies the policy of the route or gRPC
//! method, puts the [`Principal`] in the request extensions, and otherwise answers itself:
//! RFC 6750 §3 / RFC 9449 §7.1 challenges over HTTP, gRPC status codes over gRPC.
//!
//! A DPoP proof is checked against the request as the client made it: `htm` is the HTTP
//! method (for gRPC always `POST`), `htu` is [`crate::GuardConfig::public_base_url`] (default
//! `https://{host}`, the host from `:authority` or `Host`) followed by the request path (for
//! gRPC `/{package.Service}/{Method}`), without the query.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::{Layer, Service};

use crate::guard::DpopProof;
use crate::{ClientCertificate, Guard, GuardError, Policy};

/// Protects every request that reaches it, with per-path policies. Paths are exact: an HTTP
/// route (`/weatherforecast`) or a gRPC method (`/greet.Greeter/SayHello`).
#[derive(Clone, Debug)]
pub struct GuardLayer {
    guard: Guard,
    // Shared: a request takes its route's policy by reference count, not by copying its scopes.
    default: Option<Arc<Policy>>,
    routes: Arc<HashMap<String, Option<Arc<Policy>>>>,
    realm: Arc<str>,
}

impl GuardLayer {
    /// Every path requires a valid token, no particular scope, until told otherwise.
    pub fn new(guard: Guard) -> Self {
        let realm = guard.config().audience.as_str().into();
        Self { guard, default: Some(Arc::new(Policy::Authenticated)), routes: Arc::default(), realm }
    }

    /// The policy of paths without one of their own.
    pub fn require(mut self, policy: Policy) -> Self {
        self.default = Some(Arc::new(policy));
        self
    }

    /// The policy of one path.
    pub fn route(mut self, path: impl Into<String>, policy: Policy) -> Self {
        Arc::make_mut(&mut self.routes).insert(path.into(), Some(Arc::new(policy)));
        self
    }

    /// A path anyone may call without a token (e.g. a health page).
    pub fn public(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.routes).insert(path.into(), None);
        self
    }

    fn policy_for(&self, path: &str) -> Option<Arc<Policy>> {
        if self.routes.is_empty() {
            return self.default.clone();
        }
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
            // Owned, so the request is not borrowed across the await (bodies need not be Sync):
            // the header value, which shares the bytes hyper read, rather than a copy.
            let (scheme, token) = authorization(req.headers());
            let token = token.map(|t| {
                let value = req.headers().get(header::AUTHORIZATION).expect("the value `t` was read from").clone();
                // `t` ends the value: it is where it starts that is kept.
                let at = value.len() - t.len();
                (value, at)
            });
            // RFC 8705 §3: the connection's certificate, if the app put it there.
            let certificate = req.extensions().get::<ClientCertificate>().cloned();
            let dpop = (scheme == Scheme::Dpop).then(|| dpop_request(&req, guard.config().public_base_url.as_deref()));
            let outcome = async {
                let (value, at) = token?;
                // Checked to be ASCII by `authorization`. (Re-borrowing only the token's bytes
                // with `from_utf8` measured no faster than this.)
                let token =
                    value.to_str().map_err(|_| GuardError::Malformed)?.get(at..).ok_or(GuardError::Malformed)?;
                let dpop = dpop.transpose()?;
                let proof = dpop.as_ref().map(|d| DpopProof { proof: &d.proof, method: &d.method, url: &d.url });
                let principal = guard.present(token, proof, certificate.as_ref()).await?;
                policy.check(&principal)?;
                Ok::<_, GuardError>(principal)
            }
            .await;
            guard.0.counters.outcome(&outcome);
            // §9: answers to DPoP requests carry the nonce the next proof needs, so that a
            // client never meets a rotation as a refusal.
            let nonce = if scheme == Scheme::Dpop { guard.current_dpop_nonce() } else { None };
            match outcome {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    let mut response = inner.call(req).await?;
                    if let Some(v) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
                        response.headers_mut().insert(NONCE_HEADER, v);
                    }
                    Ok(response)
                }
                Err(e) => {
                    if let GuardError::Unavailable(why) = &e {
                        tracing::error!(%why, "failing closed: cannot validate tokens");
                    } else {
                        tracing::debug!(error = %e, "request refused");
                    }
                    let mut r = if grpc { grpc_refusal(&e) } else { http_refusal(&e, scheme, &realm) };
                    if let Some(v) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
                        r.headers_mut().entry(NONCE_HEADER).or_insert(v);
                    }
                    Ok(r)
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

/// RFC 9449 §8.1, §9.
const NONCE_HEADER: &str = "dpop-nonce";

/// The authentication scheme of the request, and so of the challenge that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// RFC 6750 §2.1.
    Bearer,
    /// RFC 9449 §7.1.
    Dpop,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// RFC 6750 §2.1: `Authorization: Bearer b64token`, b64token = 1*( ALPHA / DIGIT / "-" /
/// "." / "_" / "~" / "+" / "/" ) *"="; RFC 9449 §7.1: `Authorization: DPoP token68`, the
/// same characters. Any other scheme is no token at all.
fn authorization(headers: &http::HeaderMap) -> (Scheme, Result<&str, GuardError>) {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return (Scheme::Bearer, Err(GuardError::Missing)) };
    if values.next().is_some() {
        return (Scheme::Bearer, Err(GuardError::Malformed));
    }
    let Ok(value) = value.to_str() else { return (Scheme::Bearer, Err(GuardError::Malformed)) };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        // Another scheme is not an access token at all.
        return (Scheme::Bearer, Err(GuardError::Missing));
    };
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
    (scheme, if ok { Ok(token) } else { Err(GuardError::Malformed) })
}

/// The characters of a b64token (RFC 6750 §2.1) and token68 (RFC 9110 §11.2) before the
/// padding: one table lookup per byte of a ~600-byte token, on every request.
const B64TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
};

/// What a DPoP proof must match: this request's method and URL.
struct DpopRequest {
    proof: String,
    method: String,
    url: String,
}

fn dpop_request<B>(req: &Request<B>, public_base_url: Option<&str>) -> Result<DpopRequest, GuardError> {
    let bad = |why: &str| GuardError::InvalidDpopProof(why.to_owned());
    // RFC 9449 §4.3 item 1: "There is not more than one DPoP HTTP request header field"; and
    // §7.1: a DPoP-bound token comes with a proof.
    let mut values = req.headers().get_all("dpop").iter();
    let (Some(proof), None) = (values.next(), values.next()) else {
        return Err(bad("the DPoP scheme needs exactly one DPoP header"));
    };
    let proof = proof.to_str().map_err(|_| bad("the DPoP header is not ASCII"))?.trim().to_owned();
    let path = req.uri().path();
    let url = match public_base_url {
        Some(base) => format!("{base}{path}"),
        None => {
            let host = req
                .uri()
                .authority()
                .map(|a| a.as_str())
                .or_else(|| req.headers().get(header::HOST).and_then(|h| h.to_str().ok()))
                .ok_or_else(|| bad("the request names no host"))?;
            format!("https://{host}{path}")
        }
    };
    Ok(DpopRequest { proof, method: req.method().as_str().to_owned(), url })
}

/// RFC 9449 §7.1: the `algs` of a DPoP challenge, the proof algorithms accepted.
fn dpop_algs() -> String {
    tessera_types::SigningAlg::ALL.map(|a| a.as_str()).join(" ")
}

/// Text allowed in a quoted-string of `WWW-Authenticate` (RFC 6750 §3: no `"` or `\`).
fn quoted(text: &str) -> String {
    text.chars().map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '?' }).collect()
}

/// The one HTTP renderer: RFC 6750 §3 `Bearer` challenges, RFC 9449 §7.1 `DPoP` ones for
/// requests made with that scheme.
fn http_refusal<B: Default>(e: &GuardError, scheme: Scheme, realm: &str) -> Response<B> {
    let (status, detail) = match e {
        // §3.1: "If the request lacks any authentication information ... the resource server
        // SHOULD NOT include an error code".
        GuardError::Missing => (StatusCode::UNAUTHORIZED, None),
        GuardError::Malformed => {
            (StatusCode::BAD_REQUEST, Some("error_description=\"malformed authorization credentials\"".to_owned()))
        }
        GuardError::InvalidToken(why) | GuardError::InvalidDpopProof(why) => {
            (StatusCode::UNAUTHORIZED, Some(format!("error_description=\"{}\"", quoted(why))))
        }
        GuardError::UseDpopNonce(_) | GuardError::SenderConstraintRequired => {
            (StatusCode::UNAUTHORIZED, Some(format!("error_description=\"{}\"", quoted(&e.to_string()))))
        }
        GuardError::InsufficientScope(scope) => {
            (StatusCode::FORBIDDEN, Some(format!("scope=\"{}\"", quoted(&scope.to_string()))))
        }
        // The authority, not the token, failed: no challenge.
        GuardError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    // RFC 9449 §7.1: a resource that requires sender-constrained tokens challenges with the
    // scheme the client must use; §9: so does one asking for its nonce.
    let scheme = match e {
        GuardError::SenderConstraintRequired | GuardError::UseDpopNonce(_) => Scheme::Dpop,
        _ => scheme,
    };
    let mut r = Response::new(B::default());
    *r.status_mut() = status;
    if let GuardError::UseDpopNonce(nonce) = e {
        if let Ok(v) = HeaderValue::from_str(nonce) {
            r.headers_mut().insert(NONCE_HEADER, v);
        }
    }
    if status != StatusCode::SERVICE_UNAVAILABLE {
        // §3: the realm, then the code (from `GuardError::error_code`) and its detail; RFC 9449
        // §7.1 adds `algs` to a DPoP challenge.
        let mut challenge = format!("{} realm=\"{}\"", scheme.name(), quoted(realm));
        if let Some(code) = e.error_code() {
            challenge.push_str(&format!(", error=\"{code}\""));
        }
        if let Some(detail) = detail {
            challenge.push_str(&format!(", {detail}"));
        }
        if scheme == Scheme::Dpop {
            challenge.push_str(&format!(", algs=\"{}\"", dpop_algs()));
        }
        let h = r.headers_mut();
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_str(&challenge).expect("ASCII header"));
        if *e == GuardError::Missing {
            // Without a token, either scheme will do: offer both (RFC 9110 §11.6.1 allows
            // several challenges), Bearer first.
            let dpop = format!("DPoP realm=\"{}\", algs=\"{}\"", quoted(realm), dpop_algs());
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_str(&dpop).expect("ASCII header"));
        }
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A trailers-only gRPC response: HTTP 200 with `grpc-status` in the headers.
fn grpc_refusal<B: Default>(e: &GuardError) -> Response<B> {
    let (code, message) = match e {
        GuardError::Missing => ("16", "missing bearer token".to_owned()),
        GuardError::Malformed => ("16", "malformed authorization credentials".to_owned()),
        GuardError::InvalidToken(why) => ("16", format!("invalid token: {why}")),
        GuardError::InvalidDpopProof(why) => ("16", format!("invalid DPoP proof: {why}")),
        GuardError::UseDpopNonce(_) | GuardError::SenderConstraintRequired => ("16", e.to_string()),
        GuardError::InsufficientScope(scope) => ("7", format!("insufficient scope, requires: {scope}")),
        GuardError::Unavailable(_) => ("14", "authorization server unavailable".to_owned()),
    };
    let mut r = Response::new(B::default());
    let h = r.headers_mut();
    // §9 over gRPC: the nonce in a `dpop-nonce` header beside the status, and the challenge,
    // so that a client can tell this refusal from the others.
    if let GuardError::UseDpopNonce(nonce) = e {
        if let Ok(v) = HeaderValue::from_str(nonce) {
            h.insert(NONCE_HEADER, v);
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("DPoP error=\"use_dpop_nonce\""));
        }
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static(code));
    let message: String = message.chars().map(|c| if (' '..='~').contains(&c) && c != '%' { c } else { '?' }).collect();
    h.insert("grpc-message", HeaderValue::from_str(&message).expect("ASCII header"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn rfc6750_2_1_bearer_syntax() {
        let bearer = |m: &http::HeaderMap| authorization(m).1.map(str::to_owned);
        assert_eq!(bearer(&http::HeaderMap::new()), Err(GuardError::Missing));
        assert_eq!(bearer(&h("Bearer abc.def-_~+/==")), Ok("abc.def-_~+/==".into()));
        assert_eq!(bearer(&h("bearer abc")), Ok("abc".into()));
        assert_eq!(bearer(&h("Basic abc")), Err(GuardError::Missing));
        assert_eq!(bearer(&h("Bearer")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer ")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer a b")), Err(GuardError::Malformed));
        assert_eq!(bearer(&h("Bearer a\"b")), Err(GuardError::Malformed));
    }

    /// 26 + 26 + 10 letters and digits and `-._~+/`: 66 bytes, and no other (not `=`,
    /// which only pads the end, nor space, quote, comma or any byte past ASCII).
    #[test]
    fn rfc6750_2_1_the_b64token_table_holds_its_66_characters() {
        let allowed = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        assert!(allowed.iter().all(|&b| B64TOKEN[usize::from(b)]));
        assert_eq!(B64TOKEN.iter().filter(|&&ok| ok).count(), allowed.len());
        assert!(!B64TOKEN[usize::from(b'=')] && !B64TOKEN[usize::from(b' ')] && !B64TOKEN[0x80]);
    }

    #[test]
    fn rfc9449_7_1_the_dpop_scheme_carries_a_token68() {
        assert_eq!(authorization(&h("DPoP abc.def")), (Scheme::Dpop, Ok("abc.def")));
        assert_eq!(authorization(&h("dpop abc")), (Scheme::Dpop, Ok("abc")));
        assert_eq!(authorization(&h("Bearer abc")), (Scheme::Bearer, Ok("abc")));
        assert_eq!(authorization(&h("DPoP")), (Scheme::Dpop, Err(GuardError::Malformed)));
        assert_eq!(authorization(&h("DPoP a b")), (Scheme::Dpop, Err(GuardError::Malformed)));
    }

    #[test]
    fn rfc9449_7_1_htu_is_the_public_base_url_or_https_host_plus_the_path() {
        let req =
            |host: &str| Request::builder().method("PUT").uri("/a/b?q=1").header(header::HOST, host).body(()).unwrap();
        let d = dpop_request(
            &{
                let mut r = req("api.example:8443");
                r.headers_mut().insert("dpop", HeaderValue::from_static("proof"));
                r
            },
            None,
        )
        .unwrap();
        assert_eq!(
            (d.proof.as_str(), d.method.as_str(), d.url.as_str()),
            ("proof", "PUT", "https://api.example:8443/a/b")
        );
        let mut r = req("internal:8080");
        r.headers_mut().insert("dpop", HeaderValue::from_static("proof"));
        assert_eq!(dpop_request(&r, Some("https://api.example/v1")).unwrap().url, "https://api.example/v1/a/b");
        // §4.3 item 1: not more than one DPoP header; §7.1: none is no proof.
        r.headers_mut().append("dpop", HeaderValue::from_static("proof2"));
        assert!(matches!(dpop_request(&r, None), Err(GuardError::InvalidDpopProof(_))));
        assert!(matches!(dpop_request(&req("h"), None), Err(GuardError::InvalidDpopProof(_))));
    }

    #[test]
    fn rfc6750_3_challenges_carry_the_3_1_codes() {
        let challenge = |e: GuardError| {
            let r: Response<()> = http_refusal(&e, Scheme::Bearer, "api");
            let h = r.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), h)
        };
        assert_eq!(challenge(GuardError::Missing), (401, Some(r#"Bearer realm="api""#.into())));
        assert_eq!(
            challenge(GuardError::Malformed),
            (
                400,
                Some(
                    r#"Bearer realm="api", error="invalid_request", error_description="malformed authorization credentials""#
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

    #[test]
    fn rfc9449_7_1_dpop_challenges_carry_the_code_and_algs() {
        let challenges = |e: GuardError, scheme| {
            let r: Response<()> = http_refusal(&e, scheme, "api");
            let all: Vec<String> =
                r.headers().get_all(header::WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
            (r.status().as_u16(), all)
        };
        let algs = r#"algs="ES256 RS256 PS256 EdDSA""#;
        assert_eq!(
            challenges(GuardError::InvalidDpopProof("replayed".into()), Scheme::Dpop),
            (
                401,
                vec![format!(r#"DPoP realm="api", error="invalid_dpop_proof", error_description="replayed", {algs}"#)]
            )
        );
        assert_eq!(
            challenges(GuardError::InvalidToken("expired".into()), Scheme::Dpop),
            (401, vec![format!(r#"DPoP realm="api", error="invalid_token", error_description="expired", {algs}"#)])
        );
        // No token: both schemes are offered, Bearer first.
        assert_eq!(
            challenges(GuardError::Missing, Scheme::Bearer),
            (401, vec![r#"Bearer realm="api""#.to_owned(), format!(r#"DPoP realm="api", {algs}"#)])
        );
        assert_eq!(challenges(GuardError::Unavailable("full".into()), Scheme::Dpop), (503, vec![]));
    }

    #[test]
    fn rfc9449_9_use_dpop_nonce_and_7_1_sender_constraint_answer_with_a_dpop_challenge() {
        let algs = r#"algs="ES256 RS256 PS256 EdDSA""#;
        // §9: 401, error use_dpop_nonce, the nonce in DPoP-Nonce.
        let r: Response<()> = http_refusal(&GuardError::UseDpopNonce("n-1".into()), Scheme::Dpop, "api");
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[NONCE_HEADER], "n-1");
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with(r#"DPoP realm="api", error="use_dpop_nonce""#), "{challenge}");
        assert!(challenge.ends_with(algs), "{challenge}");
        // §7.1: a bearer token where a bound one is required: invalid_token, and the DPoP
        // scheme is the one to use even though the request used Bearer.
        let r: Response<()> = http_refusal(&GuardError::SenderConstraintRequired, Scheme::Bearer, "api");
        assert_eq!(r.status(), 401);
        let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.starts_with(r#"DPoP realm="api", error="invalid_token""#), "{challenge}");
        // Over gRPC: Unauthenticated, the nonce beside it.
        let r: Response<()> = grpc_refusal(&GuardError::UseDpopNonce("n-2".into()));
        assert_eq!(
            (r.headers()["grpc-status"].to_str().unwrap(), r.headers()[NONCE_HEADER].to_str().unwrap()),
            ("16", "n-2")
        );
        assert!(r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("use_dpop_nonce"));
    }
}
