//! The token, introspection and revocation endpoints driven as a tower service over an
//! in-memory implementation of their storage traits, with a `ManualClock`: no database, no
//! socket, time stepped past an expiry instead of slept through.

mod introspect;
mod memory;
mod revoke;
mod token;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use tessera_jose::SigningKey;
use tessera_store::{ClientLimits, ClientRecord, ScopeRecord};
use tessera_types::{ClientId, ClientSecret, Permission, Resource, ScopeName, SigningAlg, TokenFormat, UnixTime};
use tower::ServiceExt as _;

use crate::clock::ManualClock;
use crate::limits::Limits;
use crate::random::SystemRandom;
use crate::registry::{PublishedKey, Registry, RegistryHandle};
use crate::secrets;
use crate::storage::Stores;
use crate::{AppParts, AppState, Deps, router};

use memory::MemoryStore;

/// When every test starts.
const T0: UnixTime = UnixTime(1_700_000_000);
/// Access token lifetime of every client, seconds.
const LIFETIME: i64 = 300;
/// The resource server: its client id is the audience of scope `api`, so it may introspect
/// tokens for that scope (RFC 7662 §4).
const RS: &str = "rs_api";

/// A server over [`MemoryStore`] with three clients: `jwt_client` (JWT access tokens),
/// `ref_client` (reference tokens), both allowed every endpoint, and the resource server
/// [`RS`], allowed introspection only.
struct Fixture {
    app: axum::Router,
    state: AppState,
    clock: ManualClock,
    store: Arc<MemoryStore>,
    registry: Arc<RegistryHandle>,
    secrets: Vec<(&'static str, ClientSecret)>,
    key: (tessera_types::Kid, tessera_types::rfc7517::Jwk, Vec<u8>),
}

/// A client of `format` with one generated secret; also the fixture of other modules' tests.
pub(crate) fn client(id: &str, format: TokenFormat, permissions: &[&str], secret: &ClientSecret) -> ClientRecord {
    ClientRecord {
        client_id: ClientId::new(id).unwrap(),
        display_name: None,
        secrets: vec![secrets::record(secret, true, &SystemRandom::default(), T0)],
        permissions: permissions.iter().map(|p| p.parse::<Permission>().unwrap()).collect(),
        access_token_lifetime: LIFETIME,
        token_format: format,
        signing_alg: None,
        enabled: true,
        created_at: T0,
        limits: ClientLimits::default(),
        tokens_not_before: None,
        jwks: None,
        jwks_uri: None,
        auth_method: None,
        tls: Default::default(),
        require_dpop: false,
    }
}

const ALL: &[&str] = &["ept:token", "ept:introspection", "ept:revocation", "gt:client_credentials", "scp:api"];

impl Fixture {
    fn new() -> Self {
        let rng = SystemRandom::default();
        let secrets: Vec<(&'static str, ClientSecret)> =
            ["jwt_client", "ref_client", RS].into_iter().map(|id| (id, secrets::generate(&rng))).collect();
        let (key, pkcs8) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let key = (key.kid.clone(), key.public_jwk(), pkcs8);
        let clock = ManualClock::new(T0);
        let registry = Arc::new(RegistryHandle::fixed(Self::registry_of(&secrets, &key, |_| {})));
        let store = Arc::new(MemoryStore::default());
        let state = AppState::new(AppParts {
            issuer: "https://issuer.test".parse().unwrap(),
            signing_algs: vec![SigningAlg::ES256],
            max_body_bytes: 4096,
            limits: Limits::default(),
            mtls: Default::default(),
            registry: registry.clone(),
            stores: Stores::shared(store.clone()),
            deps: Deps { clock: Arc::new(clock.clone()), rng: Arc::new(rng) },
        });
        Self { app: router(state.clone()), state, clock, store, registry, secrets, key }
    }

    fn registry_of(
        secrets: &[(&'static str, ClientSecret)],
        key: &(tessera_types::Kid, tessera_types::rfc7517::Jwk, Vec<u8>),
        edit: impl FnOnce(&mut Vec<ClientRecord>),
    ) -> Registry {
        let scope = ScopeRecord {
            name: ScopeName::new("api").unwrap(),
            display_name: None,
            display_names: Default::default(),
            description: None,
            resources: vec![Resource::new(RS).unwrap()],
            created_at: T0,
        };
        let mut clients = vec![
            client("jwt_client", TokenFormat::Jwt, ALL, &secrets[0].1),
            client("ref_client", TokenFormat::Reference, ALL, &secrets[1].1),
            client(RS, TokenFormat::Jwt, &["ept:introspection"], &secrets[2].1),
        ];
        edit(&mut clients);
        let signing = SigningKey::from_pkcs8(SigningAlg::ES256, &key.2).unwrap();
        let keys =
            vec![PublishedKey { kid: key.0.clone(), jwk: key.1.clone(), signing: Some((SigningAlg::ES256, signing)) }];
        Registry::from_records(1, vec![scope], clients, keys).unwrap()
    }

    /// Changes the registered clients, as an administrator would between requests.
    fn edit_clients(&self, edit: impl FnOnce(&mut Vec<ClientRecord>)) {
        self.registry.replace(Self::registry_of(&self.secrets, &self.key, edit));
    }

    fn secret(&self, id: &str) -> &str {
        self.secrets.iter().find(|(i, _)| *i == id).unwrap().1.expose()
    }

    async fn post(&self, path: &str, auth: Auth<'_>, body: &str) -> Answer {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let mut body = body.to_owned();
        match auth {
            Auth::Basic(id, secret) => {
                request = request.header(header::AUTHORIZATION, basic_header(id, secret));
            }
            Auth::Post(id, secret) => body = format!("{body}&client_id={id}&client_secret={secret}"),
            Auth::None => {}
        }
        let response = self.app.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, json }
    }

    /// A token for `id`, with its own (correct) secret, by Basic.
    async fn token_for(&self, id: &str) -> String {
        let a = self.post("/connect/token", Auth::Basic(id, self.secret(id)), "grant_type=client_credentials").await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        a.json["access_token"].as_str().unwrap().to_owned()
    }

    /// What the resource server learns about `token`.
    async fn introspect(&self, token: &str) -> Value {
        let a = self.post("/connect/introspect", Auth::Basic(RS, self.secret(RS)), &format!("token={token}")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        a.json
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    None,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }

    fn challenge(&self) -> Option<&str> {
        self.headers.get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap())
    }
}

/// RFC 6749 §2.3.1 `Authorization: Basic` (the ids and secrets here need no form-encoding).
fn basic_header(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The claims of a compact JWS, unverified (the introspection tests verify).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
