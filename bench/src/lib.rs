//! Shared set-up for Tessera's benchmarks: an in-process server state with one client per
//! signing algorithm.

use std::sync::Arc;

use tessera_server::admin::{self, ClientSpec, ScopeSpec};
use tessera_server::clock::{Clock as _, SystemClock, SystemRandom};
use tessera_server::keys::{self, Kek};
use tessera_server::storage::Stores;
use tessera_server::{AppParts, AppState, Deps, RegistryHandle};
use tessera_store::Store;
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeName, SigningAlg};

/// A state with scope `api` (audience `api1`) and, per algorithm, a client
/// `bench-<alg>` with the generated secret returned, plus `bench-imported` whose secret
/// `bench-imported-secret` is an argon2id hash.
pub async fn state(dir: &std::path::Path) -> (AppState, Vec<(SigningAlg, String, String)>) {
    state_with(dir, |_| async {}).await
}

/// [`state`], recording metrics (issue 16) into `metrics`.
pub async fn state_with_metrics(
    dir: &std::path::Path,
    metrics: Arc<tessera_server::metrics::Metrics>,
) -> (AppState, Vec<(SigningAlg, String, String)>) {
    build(dir, |_| async {}, metrics).await
}

/// [`state`], with `more` registered before the registry is loaded.
pub async fn state_with<F, Fut>(dir: &std::path::Path, more: F) -> (AppState, Vec<(SigningAlg, String, String)>)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    build(dir, more, Arc::new(tessera_server::metrics::Metrics::off())).await
}

async fn build<F, Fut>(
    dir: &std::path::Path,
    more: F,
    metrics: Arc<tessera_server::metrics::Metrics>,
) -> (AppState, Vec<(SigningAlg, String, String)>)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let store = Store::open_embedded(dir).await.unwrap();
    let rng = SystemRandom::default();
    let now = SystemClock.now();
    admin::add_scope(
        &store,
        ScopeSpec { resources: vec![Resource::new("api1").unwrap()], ..ScopeSpec::new(ScopeName::new("api").unwrap()) },
        now,
    )
    .await
    .unwrap();
    let mut clients = Vec::new();
    for alg in SigningAlg::ALL {
        let id = format!("bench-{alg}");
        let new = ClientSpec { signing_alg: Some(alg), ..unthrottled(&id) };
        let (_, secret) = admin::add_client(&store, new, 3600, &Default::default(), &rng, now).await.unwrap();
        clients.push((alg, id, secret.unwrap().expose().to_string()));
    }
    let new = ClientSpec {
        secret: Some(ClientSecret::new("bench-imported-secret").unwrap()),
        ..unthrottled("bench-imported")
    };
    admin::add_client(&store, new, 3600, &Default::default(), &rng, now).await.unwrap();
    more(store.clone()).await;
    let kek = Kek::load_or_create(&dir.join("kek"), &rng).unwrap();
    keys::ensure_active(&store, &kek, &SigningAlg::ALL, &rng, now).await.unwrap();
    let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await.unwrap());
    let state = AppState::with_metrics(
        AppParts {
            issuer: Issuer::new("https://bench.example").unwrap(),
            signing_algs: vec![SigningAlg::ES256],
            max_body_bytes: 64 * 1024,
            limits: tessera_server::limits::Limits::default(),
            mtls: Default::default(),
            registry,
            stores: Stores::sql_observed(store, metrics.clone()),
            deps: Deps::system(),
        },
        metrics,
    );
    (state, clients)
}

/// A client `id` allowed scope `api`, with a rate limit no benchmark reaches, so the
/// limiter's cost is measured on every request without it refusing any.
pub fn unthrottled(id: &str) -> ClientSpec {
    ClientSpec {
        scopes: vec![ScopeName::new("api").unwrap()],
        issuance_rate_per_second: Some(1_000_000_000.0),
        issuance_burst: Some(1_000_000_000),
        max_live_reference_tokens: Some(0),
        ..ClientSpec::new(ClientId::new(id).unwrap())
    }
}

/// `Basic base64(id:secret)`.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// A bench binary's `--name value` options, by name without the dashes.
pub fn named_args() -> std::collections::HashMap<String, String> {
    let mut opts = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        opts.insert(a.trim_start_matches("--").to_owned(), v);
    }
    opts
}

/// The issuer of the benchmarks' simulated cluster.
pub const CLUSTER: &str = "https://kubernetes.default.svc.cluster.local";

/// Issue 15: registers a trust `cluster` (inline keys: `key`'s public half) with `rules`
/// rules, rule `i` mapping namespace `ns-i` to client `bench-ES256`.
pub async fn register_cluster(
    store: &Store,
    key: &tessera_server::keys::SigningKey,
    rules: usize,
    jwks_file: &std::path::Path,
) {
    use tessera_server::federation::trusts::{TrustKind, TrustSpec, add_rule, add_trust};
    let now = SystemClock.now();
    let jwks = tessera_types::rfc7517::JwkSet { keys: vec![key.public_jwk()] };
    std::fs::write(jwks_file, serde_json::to_string(&jwks).unwrap()).unwrap();
    let spec = TrustSpec {
        jwks_file: Some(jwks_file.to_owned()),
        ..TrustSpec::new(ClientId::new("cluster").unwrap(), Issuer::new(CLUSTER).unwrap(), TrustKind::Kubernetes)
    };
    add_trust(store, spec, &tessera_server::limits::Limits::default().client_keys, now).await.unwrap();
    let client = ClientId::new("bench-ES256").unwrap();
    for i in 0..rules {
        let conditions = [format!("/kubernetes.io/namespace=ns-{i}"), "sub=system:serviceaccount:*:*".to_owned()];
        add_rule(store, "cluster", &client, &conditions, now).await.unwrap();
    }
}

/// A projected service-account token of namespace `ns`, for the benchmarks' issuer, an hour.
pub fn cluster_token(key: &tessera_server::keys::SigningKey, ns: &str) -> String {
    let now = SystemClock.now().0;
    key.sign_access_token(&serde_json::json!({
        "aud": ["https://bench.example"], "iss": CLUSTER, "iat": now, "exp": now + 3600,
        "kubernetes.io": { "namespace": ns, "serviceaccount": { "name": "api" } },
        "sub": format!("system:serviceaccount:{ns}:api")
    }))
    .unwrap()
}

/// Reference token number `i` of the cost-curve runs (`bench/scale/run.py`): 43 base64url
/// characters, the shape of a token Tessera issues, derived from `i` so that a seeder can
/// store its hash and a load driver can present it without a list of millions of tokens.
pub fn scale_token(i: u64) -> String {
    use base64::Engine as _;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, format!("tessera-scale-token-{i}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}
