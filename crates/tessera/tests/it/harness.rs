//! Starting servers and talking to them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tessera_server::admin::{self, ClientSpec, ScopeSpec};
use tessera_server::clock::{Clock as _, SystemClock, SystemRandom};
use tessera_server::{Deps, FileConfig, Overrides, Running, Settings};
use tessera_store::Store;
use tessera_types::{ClientId, ClientSecret, Permission, Resource, ScopeName, TokenFormat};

/// A client spec with this id and nothing else set.
pub fn client(id: &str) -> ClientSpec {
    ClientSpec::new(ClientId::new(id).unwrap())
}

/// A secret for a client spec.
pub fn secret(s: &str) -> Option<ClientSecret> {
    Some(ClientSecret::new(s).unwrap())
}

/// A scope for a client spec.
pub fn scope(s: &str) -> ScopeName {
    ScopeName::new(s).unwrap()
}

pub const FORM: &str = "application/x-www-form-urlencoded";

/// A server on 127.0.0.1:0 with the development certificate, and a client trusting it.
pub struct TestServer {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub http: reqwest::Client,
    /// A second handle on the store, as the CLI would open it.
    pub store: Store,
}

pub fn settings(dir: &Path, algs: &[&str], file: FileConfig) -> Settings {
    let mut file = file;
    file.registry_poll_ms = Some(50);
    // Most tests issue tokens in bursts; the limit tests set their own.
    file.limits.issuance_rate_per_second.get_or_insert(0.0);
    // Debug builds running many tests at once lag; shedding on lag is not what they test.
    file.limits.max_scheduling_delay_ms.get_or_insert(30_000);
    Settings::resolve(
        Overrides {
            data_dir: Some(dir.to_owned()),
            listen: Some("127.0.0.1:0".into()),
            signing_algs: algs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
        file,
    )
    .unwrap()
}

pub fn client_for(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&["ES256"], FileConfig::default()).await
    }

    pub async fn start_with(algs: &[&str], file: FileConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, algs, file).await
    }

    pub async fn start_in(dir: tempfile::TempDir, algs: &[&str], file: FileConfig) -> Self {
        Self::start_full(dir, algs, file, Deps::system()).await
    }

    /// With a clock of the test's choosing.
    pub async fn start_with_clock(clock: tessera_server::clock::ManualClock, file: FileConfig) -> Self {
        let deps = Deps { clock: std::sync::Arc::new(clock), rng: std::sync::Arc::new(SystemRandom::default()) };
        Self::start_full(tempfile::tempdir().unwrap(), &["ES256"], file, deps).await
    }

    pub async fn start_full(dir: tempfile::TempDir, algs: &[&str], file: FileConfig, deps: Deps) -> Self {
        let running = tessera_server::start(settings(dir.path(), algs, file), deps).await.unwrap();
        let http = client_for(running.dev_ca.as_ref().unwrap());
        let base = format!("https://localhost:{}", running.addr.port());
        let store = Store::open_embedded(dir.path()).await.unwrap();
        Self { running: Some(running), dir, base, http, store }
    }

    pub fn issuer(&self) -> &str {
        &self.running.as_ref().unwrap().issuer
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().shutdown(Duration::from_secs(5)).await.unwrap();
        self.store.close().await;
        self.dir
    }

    /// Registers the seed scenario's scope: dataEventRecords -> rs_dataEventRecordsApi.
    pub async fn add_scope(&self, name: &str, resources: &[&str]) {
        let new = ScopeSpec {
            resources: resources.iter().map(|r| Resource::new(*r).unwrap()).collect(),
            ..ScopeSpec::new(ScopeName::new(name).unwrap())
        };
        admin::add_scope(&self.store, new, SystemClock.now()).await.unwrap();
        self.sync().await;
    }

    /// Registers a client with an imported secret.
    pub async fn add_client(&self, id: &str, secret: &str, scopes: &[&str], permissions: &[&str]) {
        self.add_client_with(ClientSpec {
            secret: Some(ClientSecret::new(secret).unwrap()),
            scopes: scopes.iter().map(|s| ScopeName::new(*s).unwrap()).collect(),
            permissions: permissions.iter().map(|p| p.parse::<Permission>().unwrap()).collect(),
            ..client(id)
        })
        .await;
    }

    /// Registers a client; the tests' sample secrets are accepted below the strength floor.
    pub async fn add_client_with(&self, new: ClientSpec) -> Option<ClientSecret> {
        let new = ClientSpec { allow_weak_secret: true, ..new };
        let (_, generated) =
            admin::add_client(&self.store, new, 3600, &SystemRandom::default(), SystemClock.now()).await.unwrap();
        self.sync().await;
        generated
    }

    /// Waits until the running server has loaded the store's current revision.
    pub async fn sync(&self) {
        let want = self.store.revision().await.unwrap();
        for _ in 0..400 {
            if self.running.as_ref().unwrap().registry_revision() >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server did not load registry revision {want}");
    }

    /// The seed scenario: scope dataEventRecords (resource rs_dataEventRecordsApi) and
    /// client CC / cc_secret.
    pub async fn seed_scenario(&self) {
        self.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
        self.add_client("CC", "cc_secret", &["dataEventRecords"], &[]).await;
    }

    /// The seed scenario with reference tokens, and the API registered as a client that may
    /// introspect (its client_id is its resource name, as in the seed).
    pub async fn seed_reference_scenario(&self) {
        self.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
        self.add_client_with(ClientSpec {
            secret: Some(ClientSecret::new("cc_secret").unwrap()),
            scopes: vec![ScopeName::new("dataEventRecords").unwrap()],
            token_format: Some(TokenFormat::Reference),
            ..client("CC")
        })
        .await;
        self.add_client("rs_dataEventRecordsApi", "api_secret", &[], &["introspection"]).await;
    }

    /// A token from the token endpoint, or a panic.
    pub async fn token(&self, id: &str, secret: &str) -> String {
        let (status, _, body) = self.token_basic(id, secret, "grant_type=client_credentials").await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// POSTs a form with Basic credentials to `path`.
    pub async fn post_form(
        &self,
        path: &str,
        id: &str,
        secret: &str,
        body: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        post_basic(&self.http, &self.url(path), id, secret, body).await
    }

    /// Introspects `token` as the seed's API client.
    pub async fn introspect_as(&self, id: &str, secret: &str, token: &str) -> Value {
        let (status, h, body) = self.post_form("/connect/introspect", id, secret, &format!("token={token}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(h["cache-control"], "no-store");
        body
    }

    /// POSTs a form to the token endpoint with Basic credentials.
    pub async fn token_basic(&self, id: &str, secret: &str, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_form("/connect/token", id, secret, body).await
    }

    /// POSTs a raw request to the token endpoint.
    pub async fn token_raw(&self, req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
        split(req.send().await.unwrap()).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// POSTs a form to `url` with Basic credentials.
pub async fn post_basic(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    secret: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http
        .post(url)
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, FORM)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    split(r).await
}

pub async fn split(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Asserts an RFC 6749 §5.2 error: status, code, no-store headers, ASCII description.
pub fn assert_oauth_error(resp: &(u16, reqwest::header::HeaderMap, Value), status: u16, code: &str) {
    let (s, h, body) = resp;
    assert_eq!(*s, status, "status for {body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    if let Some(d) = body["error_description"].as_str() {
        assert!(d.chars().all(|c| c == ' ' || c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c)), "{d}");
    }
}
