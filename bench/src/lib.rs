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
    let kek = Kek::load_or_create(&dir.join("kek"), &rng).unwrap();
    keys::ensure_active(&store, &kek, &SigningAlg::ALL, &rng, now).await.unwrap();
    let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await.unwrap());
    let state = AppState::new(AppParts {
        issuer: Issuer::new("https://bench.example").unwrap(),
        signing_algs: vec![SigningAlg::ES256],
        max_body_bytes: 64 * 1024,
        limits: tessera_server::limits::Limits::default(),
        mtls: Default::default(),
        registry,
        stores: Stores::sql(store),
        deps: Deps::system(),
    });
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
