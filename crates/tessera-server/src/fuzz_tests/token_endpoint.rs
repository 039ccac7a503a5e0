//! `POST /connect/token` (and its client-authenticated siblings, introspection and
//! revocation) driven as a tower service with arbitrary and malformed requests: random
//! Authorization values, content types and bodies, around one real client.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use tessera_store::Store;
use tessera_types::{ClientId, Resource, ScopeName, SigningAlg};
use tower::ServiceExt as _;

use crate::admin::{self, ClientSpec, ScopeSpec};
use crate::clock::{Clock as _, SystemClock, SystemRandom};
use crate::form::Form;
use crate::keys::{self, Kek};
use crate::limits::{IssuanceLimits, Limits};
use crate::storage::Stores;
use crate::{AppParts, AppState, Deps, RegistryHandle, router};

const ID: &str = "CC";
const SCOPE: &str = "api";
const RESOURCE: &str = "rs_api";
const MAX_BODY: usize = 2048;

/// The RFC 6749 §5.2 codes, RFC 8707's `invalid_target`, and the two §4.1.2.1 codes.
const CODES: [&str; 9] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "server_error",
    "temporarily_unavailable",
];

struct Server {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    secret: String,
    _dir: tempfile::TempDir,
}

/// A server state over a real embedded store in a temporary directory, with one client, and
/// the production limits (brute-force back-off, issuance rate) unless told otherwise.
fn server(limits: Limits) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, secret) = rt.block_on(async {
        let store = Store::open_embedded(dir.path()).await.unwrap();
        let (rng, now) = (SystemRandom::default(), SystemClock.now());
        let scope = ScopeSpec {
            resources: vec![Resource::new(RESOURCE).unwrap()],
            ..ScopeSpec::new(ScopeName::new(SCOPE).unwrap())
        };
        admin::add_scope(&store, scope, now).await.unwrap();
        let client =
            ClientSpec { scopes: vec![ScopeName::new(SCOPE).unwrap()], ..ClientSpec::new(ClientId::new(ID).unwrap()) };
        let (_, secret) = admin::add_client(&store, client, 300, &Default::default(), &rng, now).await.unwrap();
        let kek = Kek::load_or_create(&dir.path().join("kek"), &rng).unwrap();
        keys::ensure_active(&store, &kek, &[SigningAlg::ES256], &rng, now).await.unwrap();
        let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await.unwrap());
        let state = AppState::new(AppParts {
            issuer: "http://127.0.0.1".parse().unwrap(),
            signing_algs: vec![SigningAlg::ES256],
            max_body_bytes: MAX_BODY,
            limits,
            mtls: Default::default(),
            registry,
            stores: Stores::sql(store),
            deps: Deps { clock: Arc::new(SystemClock), rng: Arc::new(rng) },
        });
        (router(state), secret.expect("generated").expose().to_owned())
    });
    Server { rt, app, secret, _dir: dir }
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What the Authorization header holds.
#[derive(Debug, Clone)]
enum Auth {
    None,
    /// The real credentials, with this spelling of the scheme.
    Real(&'static str),
    WrongSecret(String),
    WrongId(String),
    /// `Basic` and base64 of random bytes.
    RandomBase64(Vec<u8>),
    /// Any bytes at all.
    Raw(Vec<u8>),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        proptest::sample::select(vec!["Basic", "basic", "BASIC"]).prop_map(Auth::Real),
        "[ -~]{1,40}".prop_map(Auth::WrongSecret),
        "[ -~]{1,20}".prop_map(Auth::WrongId),
        vec(any::<u8>(), 0..64).prop_map(Auth::RandomBase64),
        prop_oneof![vec(any::<u8>(), 0..64), "(Bearer|Basic|Digest|) ?[ -~]{0,40}".prop_map(String::into_bytes)]
            .prop_map(Auth::Raw),
    ]
}

impl Auth {
    fn header(&self, secret: &str) -> Option<Vec<u8>> {
        let basic = |id: &str, secret: &str| {
            format!("Basic {}", STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)))).into_bytes()
        };
        match self {
            Auth::None => None,
            Auth::Real(scheme) => Some(
                format!("{scheme} {}", STANDARD.encode(format!("{}:{}", form_encode(ID), form_encode(secret))))
                    .into_bytes(),
            ),
            Auth::WrongSecret(s) => Some(basic(ID, s)),
            Auth::WrongId(id) => Some(basic(id, secret)),
            Auth::RandomBase64(raw) => Some(format!("Basic {}", STANDARD.encode(raw)).into_bytes()),
            Auth::Raw(raw) => Some(raw.clone()),
        }
    }
}

/// One body parameter; `RealSecret` is filled in with the client's secret.
#[derive(Debug, Clone)]
enum Param {
    Pair(String, String),
    RealSecret,
    Raw(Vec<u8>),
}

fn param() -> impl Strategy<Value = Param> {
    let pair = |name: &'static str, values: Vec<&'static str>| {
        prop_oneof![proptest::sample::select(values).prop_map(str::to_owned), "[ -~]{0,16}", any::<String>()]
            .prop_map(move |v| Param::Pair(name.to_owned(), v))
    };
    prop_oneof![
        4 => pair("grant_type", vec!["client_credentials", "password", ""]),
        2 => pair("scope", vec![SCOPE, "api other", ""]),
        3 => pair("client_id", vec![ID, "cc", ""]),
        3 => Just(Param::RealSecret),
        2 => pair("client_secret", vec!["x", ""]),
        1 => pair("resource", vec![RESOURCE, "https://elsewhere", ""]),
        1 => pair("token", vec!["eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "a.b.c", ""]),
        1 => ("[a-z_]{1,8}", any::<String>()).prop_map(|(n, v)| Param::Pair(n, v)),
        1 => vec(any::<u8>(), 0..24).prop_map(Param::Raw),
    ]
}

fn body() -> impl Strategy<Value = Vec<Param>> {
    prop_oneof![
        8 => vec(param(), 0..7),
        1 => vec(any::<u8>(), 0..300).prop_map(|b| vec![Param::Raw(b)]),
        1 => vec(any::<u8>(), MAX_BODY..MAX_BODY + 200).prop_map(|b| vec![Param::Raw(b)]),
    ]
}

/// A request that is valid but for a few random parameters: the real credentials by one
/// method and grant_type, then noise. Keeps the success path in reach of the fuzzer.
/// The real credentials, in the `Authorization` header (with this spelling of the scheme) or in
/// the body (RFC 6749 §2.3.1 allows both).
fn present_credentials(by_basic: bool, scheme: &'static str, params: &mut Vec<Param>) -> Auth {
    if by_basic {
        Auth::Real(scheme)
    } else {
        params.push(Param::Pair("client_id".into(), ID.into()));
        params.push(Param::RealSecret);
        Auth::None
    }
}

fn near_valid() -> impl Strategy<Value = (Auth, Vec<Param>)> {
    (any::<bool>(), proptest::sample::select(vec!["Basic", "basic", "BASIC"]), vec(param(), 0..3)).prop_map(
        |(by_basic, scheme, noise)| {
            let mut params = vec![Param::Pair("grant_type".into(), "client_credentials".into())];
            let auth = present_credentials(by_basic, scheme, &mut params);
            params.extend(noise);
            (auth, params)
        },
    )
}

fn encode_body(params: &[Param], secret: &str) -> Vec<u8> {
    let parts: Vec<Vec<u8>> = params
        .iter()
        .map(|p| match p {
            Param::Pair(n, v) => format!("{}={}", form_encode(n), form_encode(v)).into_bytes(),
            Param::RealSecret => format!("client_secret={}", form_encode(secret)).into_bytes(),
            Param::Raw(raw) => raw.clone(),
        })
        .collect();
    parts.join(&b'&')
}

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        4 => Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        1 => Just(Some(b"Application/X-WWW-Form-UrlEncoded ; charset=UTF-8".to_vec())),
        1 => Just(Some(b"application/json".to_vec())),
        1 => Just(Some(b"multipart/form-data; boundary=x".to_vec())),
        1 => Just(None),
        1 => vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

/// The same rule as the endpoint (RFC 6749 appendix B), stated over raw bytes.
fn is_form_content_type(ct: Option<&[u8]>) -> bool {
    ct.and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The three client-authenticated endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Endpoint {
    Token,
    /// The client lacks the introspection permission: never a 200.
    Introspect,
    /// RFC 7009 §2.2: a 200 (empty) for any token, once the client is authenticated.
    Revoke,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Token => "/connect/token",
            Endpoint::Introspect => "/connect/introspect",
            Endpoint::Revoke => "/connect/revoke",
        }
    }
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    prop_oneof![4 => Just(Endpoint::Token), 1 => Just(Endpoint::Introspect), 1 => Just(Endpoint::Revoke)]
}

/// Whether a 200 may be answered: form content, the real credentials by exactly one method,
/// and what the endpoint requires (grant_type client_credentials; a token; the permission).
fn may_succeed(endpoint: Endpoint, auth: &Auth, ct: Option<&[u8]>, body: &[u8], secret: &str) -> bool {
    let Ok(form) = Form::parse(body) else { return false };
    let one = |name: &str| form.single(name).ok().flatten();
    let single_ok = |name: &str| form.single(name).is_ok();
    let real_by_basic = matches!(auth, Auth::Real(_))
        && single_ok("client_secret")
        && one("client_secret").is_none()
        && single_ok("client_id")
        && one("client_id").is_none_or(|id| id == ID);
    let real_by_post =
        matches!(auth, Auth::None) && one("client_id") == Some(ID) && one("client_secret") == Some(secret);
    let required = match endpoint {
        Endpoint::Token => one("grant_type") == Some("client_credentials"),
        Endpoint::Introspect => false,
        Endpoint::Revoke => one("token").is_some(),
    };
    is_form_content_type(ct) && (real_by_basic || real_by_post) && required
}

struct Outcome {
    retry_after: bool,
    endpoint: Endpoint,
    /// The request tried the Authorization header (with any scheme).
    tried_header: bool,
    /// ... with the Basic scheme.
    tried_basic: bool,
    status: StatusCode,
    json: Option<Value>,
    cache_control: Option<String>,
    challenge: bool,
}

fn post(
    s: &Server,
    endpoint: Endpoint,
    authorization: Option<&[u8]>,
    ct: Option<&[u8]>,
    body: Vec<u8>,
) -> Option<Outcome> {
    let mut req = Request::post(endpoint.path());
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    if let Some(c) = ct {
        req = req.header(header::CONTENT_TYPE, c);
    }
    // A value no HTTP stack would carry (a NUL, a newline) cannot reach the server at all.
    let req = req.body(Body::from(body)).ok()?;
    let response = s.rt.block_on(s.app.clone().oneshot(req)).unwrap();
    let status = response.status();
    let h = response.headers();
    let cache_control = h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let retry_after = h.contains_key(header::RETRY_AFTER);
    let challenge = h.contains_key(header::WWW_AUTHENTICATE);
    let bytes = s.rt.block_on(axum::body::to_bytes(response.into_body(), 1 << 20)).unwrap();
    let scheme = authorization.and_then(|a| std::str::from_utf8(a).ok()).and_then(|a| a.split_once(' ')).map(|s| s.0);
    let tried_basic = scheme.is_some_and(|s| s.eq_ignore_ascii_case("basic"));
    Some(Outcome {
        retry_after,
        endpoint,
        tried_header: authorization.is_some(),
        tried_basic,
        status,
        json: serde_json::from_slice(&bytes).ok(),
        cache_control,
        challenge,
    })
}

/// Every answer is an RFC 6749 §5.1 success or §5.2 error: JSON object, no-store, a known code;
/// no 5xx other than 503; §5.2 "If the client attempted to authenticate via the
/// Authorization request header field, the authorization server MUST respond with an HTTP 401
/// ... and include the WWW-Authenticate response header field". (A failed client_secret_post
/// gets a 401 without a challenge: §5.2 leaves that open, and the server's own tests fix it.)
fn assert_well_formed(o: &Outcome) -> Result<(), TestCaseError> {
    prop_assert!(!o.status.is_server_error() || o.status == StatusCode::SERVICE_UNAVAILABLE, "{}", o.status);
    prop_assert_eq!(o.cache_control.as_deref(), Some("no-store"));
    if o.status == StatusCode::OK && o.endpoint == Endpoint::Revoke {
        return Ok(());
    }
    let json = o.json.as_ref().and_then(Value::as_object);
    prop_assert!(json.is_some(), "body is not a JSON object ({})", o.status);
    let json = json.unwrap();
    if o.status == StatusCode::OK && o.endpoint == Endpoint::Introspect {
        prop_assert!(json.get("active").is_some_and(Value::is_boolean));
    } else if o.status == StatusCode::OK {
        prop_assert!(json.get("access_token").and_then(Value::as_str).is_some_and(|t| !t.is_empty()));
        prop_assert_eq!(json.get("token_type").and_then(Value::as_str), Some("Bearer"));
    } else {
        let code = json.get("error").and_then(Value::as_str).unwrap_or("(none)");
        prop_assert!(CODES.contains(&code), "error {code:?}");
        if o.status == StatusCode::UNAUTHORIZED {
            prop_assert_eq!(code, "invalid_client");
            prop_assert!(o.challenge || !o.tried_header, "RFC 6749 section 5.2: WWW-Authenticate after a header");
        }
        if o.status == StatusCode::TOO_MANY_REQUESTS {
            // Brute-force back-off (invalid_client) or the issuance rate (temporarily_unavailable).
            prop_assert!(code == "invalid_client" || code == "temporarily_unavailable", "429 with {code}");
            prop_assert!(o.retry_after, "a 429 says when to retry (RFC 6585 section 4)");
        } else if code == "invalid_client" && o.tried_basic {
            prop_assert_eq!(o.status, StatusCode::UNAUTHORIZED, "RFC 6749 section 5.2: 401 after Basic");
        }
    }
    Ok(())
}

/// Arbitrary requests: never a 200 without the real credentials, never a 5xx but 503, every
/// answer well formed.
#[test]
fn arbitrary_token_requests_are_refused_properly() {
    let s = server(Limits::default());
    let strategy = (endpoint(), content_type(), prop_oneof![3 => (auth(), body()), 2 => near_valid()]);
    let (successes, sent) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let mut runner = TestRunner::new(super::config(256));
    runner
        .run(&strategy, |(endpoint, ct, (auth, params))| {
            let body = encode_body(&params, &s.secret);
            let authorization = auth.header(&s.secret);
            let Some(o) = post(&s, endpoint, authorization.as_deref(), ct.as_deref(), body.clone()) else {
                return Ok(());
            };
            sent.set(sent.get() + 1);
            assert_well_formed(&o)?;
            if o.status == StatusCode::OK {
                successes.set(successes.get() + 1);
                prop_assert!(
                    may_succeed(endpoint, &auth, ct.as_deref(), &body, &s.secret),
                    "200 from {endpoint:?} for {auth:?} {:?} {:?}",
                    ct.as_deref().map(String::from_utf8_lossy),
                    String::from_utf8_lossy(&body)
                );
            }
            if body.len() > MAX_BODY && is_form_content_type(ct.as_deref()) {
                prop_assert_eq!(o.status, StatusCode::PAYLOAD_TOO_LARGE);
            }
            Ok(())
        })
        .unwrap();
    eprintln!("{} requests sent, {} answered 200", sent.get(), successes.get());
    // The generator reaches the success path too, or the property above says little.
    assert!(successes.get() > 0 || runner.config().cases < 64, "no request succeeded");
}

/// The real credentials by either method, with unknown parameters around them (RFC 6749 §3.2:
/// "unrecognized request parameters" are ignored), always succeed.
#[test]
fn real_credentials_with_noise_succeed() {
    // Any number of cases: the issuance rate limit is off here.
    let d = Limits::default();
    let s = server(Limits { issuance: IssuanceLimits { rate_per_second: 0.0, ..d.issuance }, ..d });
    let strategy = (
        any::<bool>(),
        proptest::sample::select(vec!["Basic", "basic", "BASIC"]),
        proptest::option::of(Just(SCOPE)),
        // Distinct names: §3.2 refuses any repeated parameter, known or not.
        proptest::collection::btree_map("x_[a-z]{1,6}", any::<String>(), 0..4),
    );
    TestRunner::new(super::config(64))
        .run(&strategy, |(by_basic, scheme, scope, noise)| {
            let mut params: Vec<Param> = noise.into_iter().map(|(n, v)| Param::Pair(n, v)).collect();
            params.push(Param::Pair("grant_type".into(), "client_credentials".into()));
            if let Some(scope) = scope {
                params.insert(0, Param::Pair("scope".into(), scope.into()));
            }
            let auth = present_credentials(by_basic, scheme, &mut params);
            let body = encode_body(&params, &s.secret);
            let o = post(
                &s,
                Endpoint::Token,
                auth.header(&s.secret).as_deref(),
                Some(b"application/x-www-form-urlencoded"),
                body,
            )
            .expect("a valid request");
            assert_well_formed(&o)?;
            prop_assert_eq!(o.status, StatusCode::OK, "{:?}", o.json);
            Ok(())
        })
        .unwrap();
}
