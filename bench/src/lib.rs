//! Shared set-up for Tessera's benchmarks: an in-process server state with one client per
//! signing algorithm.

use std::sync::Arc;

use tessera_server::admin::{self, NewClient, NewScope};
use tessera_server::clock::{Clock as _, SystemClock, SystemRandom};
use tessera_server::keys::{self, Kek};
use tessera_server::storage::Stores;
use tessera_server::{AppParts, AppState, Deps, RegistryHandle};
use tessera_store::Store;
use tessera_types::SigningAlg;

/// A state with scope `api` (audience `api1`) and, per algorithm, a client
/// `bench-<alg>` with the generated secret returned, plus `bench-imported` whose secret
/// `bench-imported-secret` is an argon2id hash.
pub async fn state(dir: &std::path::Path) -> (AppState, Vec<(SigningAlg, String, String)>) {
    let store = Store::open_embedded(dir).await.unwrap();
    let rng = SystemRandom::default();
    let now = SystemClock.now();
    admin::add_scope(
        &store,
        NewScope { name: "api".into(), resources: vec!["api1".into()], ..Default::default() },
        now,
    )
    .await
    .unwrap();
    let mut clients = Vec::new();
    for alg in SigningAlg::ALL {
        let id = format!("bench-{alg}");
        let new = NewClient {
            client_id: id.clone(),
            scopes: vec!["api".into()],
            signing_alg: Some(alg.to_string()),
            limits: unthrottled(),
            ..Default::default()
        };
        let (_, secret) = admin::add_client(&store, new, 3600, &rng, now).await.unwrap();
        clients.push((alg, id, secret.unwrap().expose().to_string()));
    }
    let new = NewClient {
        client_id: "bench-imported".into(),
        secret: Some("bench-imported-secret".into()),
        scopes: vec!["api".into()],
        limits: unthrottled(),
        ..Default::default()
    };
    admin::add_client(&store, new, 3600, &rng, now).await.unwrap();
    let kek = Kek::load_or_create(&dir.join("kek"), &rng).unwrap();
    keys::ensure_active(&store, &kek, &SigningAlg::ALL, &rng, now).await.unwrap();
    let registry = Arc::new(RegistryHandle::new(store.clone(), kek).await.unwrap());
    let state = AppState::new(AppParts {
        issuer: "https://bench.example".into(),
        signing_algs: vec![SigningAlg::ES256],
        max_body_bytes: 64 * 1024,
        limits: tessera_server::limits::Limits::default(),
        registry,
        stores: Stores::sql(store),
        deps: Deps::system(),
    });
    (state, clients)
}

/// A rate limit no benchmark reaches, so the limiter's cost is measured on every request
/// without it refusing any.
pub fn unthrottled() -> tessera_store::ClientLimits {
    tessera_store::ClientLimits {
        issuance_rate_milli: Some(1_000_000_000_000),
        issuance_burst: Some(1_000_000_000),
        max_live_tokens: Some(0),
    }
}

/// `Basic base64(id:secret)`.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}
