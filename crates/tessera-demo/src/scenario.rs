//! `tessera demo`: the whole scenario in one process, on loopback, in a temporary data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tessera_client::{AuthorizedClient, ClientConfig, TokenSource};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, Mode};
use tessera_server::config::{SeedClient, SeedScope};
use tessera_server::{Deps, FileConfig, Overrides, Settings};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

use crate::{DemoError, greet, greeter, weather_api, worker};

/// The seeds' registrations: scope `dataEventRecords` (resource `rs_dataEventRecordsApi`) and
/// its clients `CC` (JWT) and `CC_reference` (reference tokens); the API's own client
/// `rs_dataEventRecordsApi` that may introspect; scope `api1` and the background service.
pub fn seed_config() -> FileConfig {
    let scope = |name: &str, resource: &str, display: &str| SeedScope {
        name: name.into(),
        display_name: Some(display.into()),
        display_names: Default::default(),
        description: None,
        resources: vec![resource.into()],
    };
    let client = seed_client;
    FileConfig {
        scopes: vec![
            scope("dataEventRecords", "rs_dataEventRecordsApi", "dataEventRecords API"),
            scope("api1", "api1", "API 1"),
        ],
        clients: vec![
            client("CC", "cc_secret", &["dataEventRecords"], &[], "jwt"),
            client("CC_reference", "cc_reference_secret", &["dataEventRecords"], &[], "reference"),
            client("rs_dataEventRecordsApi", "rs_dataEventRecordsApi_secret", &[], &["introspection"], "jwt"),
            client("background-service", "service-secret-here", &["api1"], &[], "jwt"),
        ],
        ..Default::default()
    }
}

fn http_trusting(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("dev CA");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .build()
        .expect("client")
}

/// A client to seed: imported secret, scopes, extra permissions, token format.
pub fn seed_client(id: &str, secret: &str, scopes: &[&str], permissions: &[&str], format: &str) -> SeedClient {
    SeedClient {
        client_id: id.into(),
        secret: Some(secret.into()),
        display_name: None,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        permissions: permissions.iter().map(|s| s.to_string()).collect(),
        access_token_lifetime: None,
        signing_alg: None,
        token_format: Some(format.into()),
        // The seeds publish these sample secrets; `cc_secret` is below the strength floor.
        allow_weak_secret: true,
        issuance_rate_per_second: None,
        issuance_burst: None,
        max_live_reference_tokens: None,
    }
}

/// Starts the authorization server, the Greeter and the REST API, runs the console client (JWT
/// and reference tokens) and the worker, prints what they get, stops everything.
pub async fn demo(data_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let settings = Settings::resolve(
        Overrides { data_dir: Some(data_dir.to_owned()), listen: Some(loopback.to_string()), ..Default::default() },
        seed_config(),
    )?;
    let server = tessera_server::start(settings, Deps::system()).await?;
    let ca = server.dev_ca.clone().ok_or("no development CA")?;
    let tls = tessera_server::tls::dev_cert(data_dir)?;
    let http = http_trusting(&ca);
    println!("authorization server: {} (dev CA {})", server.issuer, ca.display());

    // The Greeter validates JWTs locally and reference tokens by introspection, with its own
    // client credentials, as in the first seed.
    let issuer = Issuer::new(&server.issuer)?;
    let creds = ClientCredentials::new(
        ClientId::new("rs_dataEventRecordsApi")?,
        ClientSecret::new("rs_dataEventRecordsApi_secret")?,
    );
    let greeter_guard = Guard::new(
        GuardConfig::new(issuer.clone(), Resource::new("rs_dataEventRecordsApi")?, Mode::Auto(creds))
            .with_http_client(http.clone()),
    )?;
    let greeter = greeter(loopback, &tls.cert, &tls.key, greeter_guard).await?;
    println!("Greeter (gRPC, HTTP/2, TLS): {}", greeter.url());
    let api_guard =
        Guard::new(GuardConfig::new(issuer.clone(), Resource::new("api1")?, Mode::Jwt).with_http_client(http.clone()))?;
    let api = weather_api(loopback, &tls.cert, &tls.key, api_guard).await?;
    println!("REST API: {}/weatherforecast", api.url());

    // The seed's registrations are literals that are valid by construction.
    let source = |id: &str, secret: &str, scope: &str| {
        let (id, secret, scope) = (ClientId::new(id), ClientSecret::new(secret), ScopeSet::parse(scope));
        let cfg = ClientConfig::new(issuer.clone(), id.expect("seed client id"), secret.expect("seed secret"));
        TokenSource::new(cfg.scope(scope.expect("seed scope")).with_http_client(http.clone()))
    };
    let result: Result<(), DemoError> = async {
        println!("{}", greet(&greeter.url(), &ca, source("CC", "cc_secret", "dataEventRecords")).await?);
        let reference =
            greet(&greeter.url(), &ca, source("CC_reference", "cc_reference_secret", "dataEventRecords")).await?;
        println!("{reference} (reference token, introspected)");
        let client = AuthorizedClient::new(http.clone(), source("background-service", "service-secret-here", "api1"));
        let calls = worker(
            client,
            format!("{}/weatherforecast", api.url()),
            Duration::from_millis(200),
            tokio::time::sleep(Duration::from_millis(500)),
        )
        .await;
        println!("background worker: {calls} calls to /weatherforecast succeeded");
        if calls == 0 {
            return Err(DemoError::Api("the worker could not call the REST API".into()));
        }
        Ok(())
    }
    .await;
    greeter.stop().await;
    api.stop().await;
    server.shutdown(Duration::from_secs(5)).await?;
    result?;
    println!("demo finished: everything shut down");
    Ok(())
}
