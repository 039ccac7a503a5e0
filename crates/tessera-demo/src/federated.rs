//! Issue 15 in the seed scenario: a worker with no secret at all. A simulated Kubernetes
//! cluster (its own signing key, the issuer a real API server announces) projects a
//! service-account token into a file, as a pod's projected volume would; Tessera trusts the
//! cluster, and one rule maps the `demo` namespace's `worker` service account to the client
//! `federated-worker`. The worker reads the file for each token request.

use std::path::Path;

use serde_json::json;
use tessera_client::{AuthorizedClient, ClientConfig, ClientCredentials, TokenSource, WorkloadToken};
use tessera_server::admin::{self, ClientSpec};
use tessera_server::federation::trusts::{TrustKind, TrustSpec, add_rule, add_trust};
use tessera_server::keys::SigningKey;
use tessera_server::{Settings, limits::Limits};
use tessera_types::rfc7517::JwkSet;
use tessera_types::{ClientId, Issuer, ScopeName, SigningAlg, UnixTime};

use crate::DemoError;

/// The issuer a cluster's API server announces (`--service-account-issuer`).
pub const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The client the cluster's `demo/worker` service account acts as.
pub const FEDERATED_CLIENT: &str = "federated-worker";

/// The service account whose token the worker holds.
pub const SERVICE_ACCOUNT: &str = "system:serviceaccount:demo:worker";

fn err(e: impl std::fmt::Display) -> DemoError {
    DemoError::Token(e.to_string())
}

/// The simulated cluster: its signing key and where it projects tokens.
pub struct Cluster {
    key: SigningKey,
    dir: std::path::PathBuf,
}

/// Registers the cluster as a trust (its keys from a JWK Set file, as for a cluster whose
/// JWKS needs authentication to fetch; the audience Tessera's issuer), the client and the
/// rule; returns the cluster and the store revision that holds them.
pub async fn register_cluster(settings: &Settings, data_dir: &Path) -> Result<(Cluster, i64), DemoError> {
    let store = tessera_server::open_store(settings).await.map_err(err)?;
    let now = now()?;
    let (key, _) = SigningKey::generate(SigningAlg::ES256).map_err(err)?;
    let dir = data_dir.join("cluster");
    std::fs::create_dir_all(&dir).map_err(err)?;
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&JwkSet { keys: vec![key.public_jwk()] }).map_err(err)?)
        .map_err(err)?;
    let client = ClientId::new(FEDERATED_CLIENT).map_err(err)?;
    let spec = ClientSpec { scopes: vec![ScopeName::new("api1").map_err(err)?], ..ClientSpec::new(client.clone()) };
    // A secret is generated for the registration and thrown away: the worker never has one.
    admin::add_client(&store, spec, 3600, &Default::default(), &tessera_server::random::SystemRandom::default(), now)
        .await
        .map_err(err)?;
    let trust = TrustSpec {
        jwks_file: Some(jwks),
        max_token_age: Some(3600),
        ..TrustSpec::new(
            ClientId::new("demo-cluster").map_err(err)?,
            Issuer::new(CLUSTER_ISSUER).map_err(err)?,
            TrustKind::Kubernetes,
        )
    };
    add_trust(&store, trust, &Limits::default().client_keys, now).await.map_err(err)?;
    add_rule(&store, "demo-cluster", &client, &[format!("sub={SERVICE_ACCOUNT}")], now).await.map_err(err)?;
    let revision = store.revision().await.map_err(err)?;
    Ok((Cluster { key, dir }, revision))
}

fn now() -> Result<UnixTime, DemoError> {
    Ok(UnixTime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(err)?.as_secs() as i64))
}

impl Cluster {
    /// Writes the worker's projected token for `audience` (an hour, as the API server's
    /// TokenRequest issues it for a pod, `kubernetes.io` claim included); returns the file.
    pub fn project_token(&self, audience: &str) -> Result<std::path::PathBuf, DemoError> {
        let now = now()?.0;
        let token = self
            .key
            .sign_access_token(&json!({
                "aud": [audience], "iss": CLUSTER_ISSUER, "iat": now, "nbf": now, "exp": now + 3600,
                "jti": format!("demo-{now}"),
                "kubernetes.io": {
                    "namespace": "demo",
                    "pod": { "name": "worker-5f7b9c6d4-q8w2z", "uid": "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c" },
                    "serviceaccount": { "name": "worker", "uid": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d" }
                },
                "sub": SERVICE_ACCOUNT
            }))
            .map_err(err)?;
        let file = self.dir.join("token");
        std::fs::write(&file, token).map_err(err)?;
        Ok(file)
    }
}

/// The worker: a token from the projected file through the trust's rule, then a call to the
/// REST API with it. Returns the line the demo prints.
pub async fn federated_worker(
    issuer: &Issuer,
    http: &reqwest::Client,
    token_file: &Path,
    api: &str,
) -> Result<String, DemoError> {
    let id = ClientId::new(FEDERATED_CLIENT).map_err(err)?;
    let config = ClientConfig::with_credentials(
        issuer.clone(),
        id,
        ClientCredentials::Workload(WorkloadToken::file(token_file)),
    )
    .scope(tessera_types::ScopeSet::parse("api1").map_err(err)?)
    .with_http_client(http.clone());
    let client = AuthorizedClient::new(http.clone(), TokenSource::new(config));
    let response = client
        .send(client.http().get(format!("{api}/weatherforecast")))
        .await
        .map_err(|e| DemoError::Token(e.to_string()))?;
    if !response.status().is_success() {
        return Err(DemoError::Api(format!("the REST API refused the federated worker ({})", response.status())));
    }
    Ok(format!(
        "federated worker: {SERVICE_ACCOUNT} (a projected token of the demo cluster, no secret) acts as \
         {FEDERATED_CLIENT}: /weatherforecast {}",
        response.status()
    ))
}
