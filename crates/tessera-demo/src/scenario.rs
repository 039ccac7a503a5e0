//! `tessera demo`: the whole scenario in one process, on loopback, in a temporary data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tessera_client::{AssertionKey, AuthorizedClient, ClientConfig, ClientIdentity, DpopKey, TokenSource};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, Mode};
use tessera_server::{Deps, FileConfig, Overrides, Settings};
use tessera_types::{ClientId, ClientSecret, Kid, Resource, ScopeSet};

use crate::{
    Answer, DPOP_CLIENT, DemoError, Presenting, greet, greet_presenting, greeter, greeter_with_token, http_trusting,
    rest_with_token, token_jkt, trusted_ca, weather_api, worker,
};

/// The seeds' registrations, written once: the file `tessera serve --config` reads.
const SEED_TOML: &str = include_str!("../../../examples/seed.toml");

/// The sample private key of [`PRIVATE_KEY_JWT_CLIENT`], published with the repository: the
/// demo's only, like the sample secrets.
const SAMPLE_KEY_PEM: &str = include_str!("../../../examples/keys/cc-private-key-jwt.pem");

/// The `kid` the sample key's public half is registered under in `examples/seed.toml`; the
/// assertion must name it, since the server looks the key up by `kid`.
const SAMPLE_KEY_KID: &str = "cc-pkjwt-sample";

/// The seed client that has no secret and authenticates with `private_key_jwt` (RFC 7523).
pub const PRIVATE_KEY_JWT_CLIENT: &str = "CC_private_key_jwt";

/// The sample certificate and private key of [`MTLS_CLIENT`], published with the repository:
/// the demo's only. The certificate alone is registered inline in `examples/seed.toml`.
const SAMPLE_CERT_PEM: &str = include_str!("../../../examples/keys/cc-mtls.pem");

/// The seed client that has no secret and authenticates with a self-signed client certificate
/// in the TLS handshake (`self_signed_tls_client_auth`, RFC 8705 §2.2).
pub const MTLS_CLIENT: &str = "CC_mtls";

/// How far the demo's runtime may fall behind before its services shed requests. The demo
/// runs the server, two APIs and all their clients in one process on loopback: on a slow or
/// busy machine its own load is the lag, and shedding it would fail the scenario rather than
/// protect anything. A deployed server keeps the default (250 ms).
pub(crate) const DEMO_MAX_LAG: Duration = Duration::from_secs(30);

/// The seeds' registrations (`examples/seed.toml`): scope `dataEventRecords` (resource
/// `rs_dataEventRecordsApi`) and its clients `CC` (JWT), `CC_reference` (reference tokens)
/// `CC_private_key_jwt` (a public key, no secret), `CC_mtls` (a certificate, no secret) and
/// `CC_dpop` (DPoP-bound tokens only, for both APIs); the API's own client
/// `rs_dataEventRecordsApi` that may introspect and read the revocation feed; scope `api1`,
/// the REST API's client `api1` (the feed only) and the background service.
fn seed_config() -> FileConfig {
    FileConfig::parse(SEED_TOML, "examples/seed.toml").expect("examples/seed.toml is valid")
}

/// The published sample secret of a client of `examples/seed.toml`.
pub fn sample_secret(client_id: &ClientId) -> Option<ClientSecret> {
    seed_config().clients.into_iter().find(|c| &c.client_id == client_id).and_then(|c| c.secret)
}

/// The published sample key of a client of `examples/seed.toml` that authenticates with
/// `private_key_jwt`, named by the `kid` its public half is registered under there.
pub fn sample_key(client_id: &ClientId) -> Option<AssertionKey> {
    (client_id.as_str() == PRIVATE_KEY_JWT_CLIENT).then(|| {
        let key = AssertionKey::from_pem(SAMPLE_KEY_PEM).expect("examples/keys/cc-private-key-jwt.pem is a P-256 key");
        key.with_kid(Kid::new(SAMPLE_KEY_KID).expect("a valid kid"))
    })
}

/// The published sample certificate and key of a client of `examples/seed.toml` that
/// authenticates with `self_signed_tls_client_auth`; the certificate is the one registered
/// there.
pub fn sample_certificate(client_id: &ClientId) -> Option<ClientIdentity> {
    (client_id.as_str() == MTLS_CLIENT).then(|| {
        ClientIdentity::from_pem(SAMPLE_CERT_PEM.as_bytes())
            .expect("examples/keys/cc-mtls.pem holds a certificate and its key")
    })
}

/// The sample certificate and key of [`MTLS_CLIENT`] as PEM, for a connection that must
/// present it (the Greeter checks certificate-bound tokens).
pub fn sample_certificate_pem(client_id: &ClientId) -> Option<&'static str> {
    (client_id.as_str() == MTLS_CLIENT).then_some(SAMPLE_CERT_PEM)
}

/// A client of the seed scenario with its sample secret; the ids below are the seed file's.
fn seeded(client_id: &str) -> Result<(ClientId, ClientSecret), DemoError> {
    let id = ClientId::new(client_id).map_err(|e| DemoError::Token(e.to_string()))?;
    let secret = sample_secret(&id)
        .ok_or_else(|| DemoError::Token(format!("examples/seed.toml has no secret for {client_id}")))?;
    Ok((id, secret))
}

/// Starts the authorization server, the Greeter and the REST API, runs the console client (JWT
/// and reference tokens, a secret, a private key or a client certificate), the DPoP client and
/// a thief of its token, and the worker, prints what they get, stops everything.
pub async fn demo(data_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    demo_reporting(data_dir, &|line| println!("{line}")).await
}

/// [`demo`], handing each line it would print to `say` instead, so that tests can check which
/// steps happened.
pub async fn demo_reporting(data_dir: &Path, say: &dyn Fn(&str)) -> Result<(), Box<dyn std::error::Error>> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let settings = Settings::resolve(
        Overrides { data_dir: Some(data_dir.to_owned()), listen: Some(loopback.to_string()), ..Default::default() },
        {
            let mut config = seed_config();
            config.limits.max_scheduling_delay_ms.get_or_insert(DEMO_MAX_LAG.as_millis() as u64);
            config
        },
    )?;
    let store_settings = settings.clone();
    let server = tessera_server::start(settings, Deps::system()).await?;
    // Issue 15: a simulated cluster whose worker authenticates with its projected token,
    // registered once the seed's scopes exist; the server's registry loads it.
    let (cluster, revision) = crate::federated::register_cluster(&store_settings, data_dir).await?;
    let loaded = std::time::Instant::now();
    while server.registry_revision() < revision && loaded.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ca = server.dev_ca.clone().ok_or("no development CA")?;
    let tls = tessera_server::tls::dev_cert(data_dir)?;
    let http = http_trusting(&ca)?;
    say(&format!("authorization server: {} (dev CA {})", server.issuer, ca.display()));

    // The Greeter validates JWTs locally and reference tokens by introspection, with its own
    // client credentials, as in the first seed. Both APIs follow the revocation feed (issue
    // 12), started now so that they know current revocations before their first request.
    let issuer = server.issuer.clone();
    let (api_id, api_secret) = seeded("rs_dataEventRecordsApi")?;
    let creds = ClientCredentials::new(api_id, api_secret);
    let greeter_guard = Guard::new(
        GuardConfig::new(issuer.clone(), Resource::new("rs_dataEventRecordsApi")?, Mode::Auto(creds.clone()))
            .with_http_client(http.clone())
            .follow_revocations(creds),
    )?;
    greeter_guard.start_feed();
    let greeter = greeter(loopback, &tls.cert, &tls.key, greeter_guard).await?;
    say(&format!("Greeter (gRPC, HTTP/2, TLS): {}", greeter.url()));
    // The REST API validates JWTs only; its own client (api1) is for the feed alone.
    let (api1_id, api1_secret) = seeded("api1")?;
    let api_guard = Guard::new(
        GuardConfig::new(issuer.clone(), Resource::new("api1")?, Mode::Jwt)
            .with_http_client(http.clone())
            .follow_revocations(ClientCredentials::new(api1_id, api1_secret)),
    )?;
    api_guard.start_feed();
    let api_feed = api_guard.watch_feed().ok_or("the REST API follows the revocation feed")?;
    let api = weather_api(loopback, &tls.cert, &tls.key, api_guard).await?;
    say(&format!("REST API: {}/weatherforecast", api.url()));

    let source = |id: &str, scope: &str| -> Result<TokenSource, DemoError> {
        let (id, secret) = seeded(id)?;
        let scope = ScopeSet::parse(scope).map_err(|e| DemoError::Token(e.to_string()))?;
        let config = ClientConfig::new(issuer.clone(), id, secret).scope(scope);
        Ok(TokenSource::new(config.with_http_client(http.clone())))
    };
    let result: Result<(), DemoError> = async {
        say(&greet(&greeter.url(), &ca, source("CC", "dataEventRecords")?).await?);
        let reference = greet(&greeter.url(), &ca, source("CC_reference", "dataEventRecords")?).await?;
        say(&format!("{reference} (reference token, introspected)"));
        // No secret at all: the token request carries an assertion signed with the sample key.
        let id = ClientId::new(PRIVATE_KEY_JWT_CLIENT).map_err(|e| DemoError::Token(e.to_string()))?;
        let key = sample_key(&id).expect("the sample private_key_jwt client has a sample key");
        let kid = key.kid().clone();
        let scope = ScopeSet::parse("dataEventRecords").map_err(|e| DemoError::Token(e.to_string()))?;
        let config = ClientConfig::with_private_key(issuer.clone(), id, key).scope(scope);
        let keyed = greet(&greeter.url(), &ca, TokenSource::new(config.with_http_client(http.clone()))).await?;
        say(&format!("{keyed} ({PRIVATE_KEY_JWT_CLIENT}: private_key_jwt, assertion signed by key {kid}, no secret)"));
        // No secret either: the sample certificate goes in the TLS handshake with the token
        // endpoint, over an HTTP client of the source's own (the shared one cannot present it).
        let id = ClientId::new(MTLS_CLIENT).map_err(|e| DemoError::Token(e.to_string()))?;
        let identity = sample_certificate(&id).expect("the sample mTLS client has a sample certificate");
        let thumbprint = identity.thumbprint().clone();
        let scope = ScopeSet::parse("dataEventRecords").map_err(|e| DemoError::Token(e.to_string()))?;
        let config = ClientConfig::with_client_certificate(issuer.clone(), id, identity)
            .scope(scope)
            .with_root_certificate(trusted_ca(&ca)?);
        // The token is bound to the certificate: the Greeter sees the same certificate.
        let certified =
            greet_presenting(&greeter.url(), &ca, TokenSource::new(config), Some(SAMPLE_CERT_PEM.as_bytes())).await?;
        say(&format!(
            "{certified} ({MTLS_CLIENT}: self_signed_tls_client_auth, certificate x5t#S256 {thumbprint}, no secret)"
        ));
        dpop_client(say, &issuer, &http, &ca, &greeter.url(), &api.url()).await?;
        let token_file = cluster.project_token(issuer.as_str())?;
        say(&crate::federated::federated_worker(&issuer, &http, &token_file, &api.url()).await?);
        let client = AuthorizedClient::new(http.clone(), source("background-service", "api1")?);
        let calls = worker(
            client,
            format!("{}/weatherforecast", api.url()),
            Duration::from_millis(200),
            tokio::time::sleep(Duration::from_millis(500)),
        )
        .await;
        say(&format!("background worker: {calls} calls to /weatherforecast succeeded"));
        if calls == 0 {
            return Err(DemoError::Api("the worker could not call the REST API".into()));
        }
        let after =
            revoked_token_refused(&http, &issuer, &api.url(), source("background-service", "api1")?, api_feed).await?;
        say(&format!(
            "revoked at /connect/revoke: the REST API refuses the worker's token (401) {} ms later, \
             via the revocation feed",
            after.as_millis()
        ));
        Ok(())
    }
    .await;
    greeter.stop().await;
    api.stop().await;
    server.shutdown(Duration::from_secs(5)).await?;
    result?;
    say("demo finished: everything shut down");
    Ok(())
}

/// The DPoP client: a token bound to a key generated here, used at both APIs with a fresh
/// proof per call; then the same token stolen, presented as `Bearer` and with a proof by the
/// thief's own key, must be refused by both.
async fn dpop_client(
    say: &dyn Fn(&str),
    issuer: &tessera_types::Issuer,
    http: &reqwest::Client,
    ca: &Path,
    greeter_url: &str,
    api_url: &str,
) -> Result<(), DemoError> {
    let token_error = |e: tessera_client::ClientError| DemoError::Token(e.to_string());
    let key = DpopKey::generate().map_err(token_error)?;
    let (id, secret) = seeded(DPOP_CLIENT)?;
    let scope = ScopeSet::parse("dataEventRecords api1").map_err(|e| DemoError::Token(e.to_string()))?;
    let config = ClientConfig::new(issuer.clone(), id, secret).scope(scope).with_http_client(http.clone());
    let source = TokenSource::new(config.with_dpop(key.clone()));
    let token = source.token().await.map_err(token_error)?;
    // RFC 9449 §5: token_type DPoP; §6.1: cnf.jkt, the thumbprint of the key that signed the
    // token request's proof.
    let jkt = token_jkt(token.access_token.expose());
    if !token.dpop_bound || jkt.as_deref() != Some(key.thumbprint().as_str()) {
        return Err(DemoError::Token(format!("{DPOP_CLIENT} got a token not bound to its key (cnf.jkt {jkt:?})")));
    }
    say(&format!(
        "{DPOP_CLIENT}: token_type DPoP, cnf.jkt {} (a key generated for this run)",
        short(&key.thumbprint())
    ));
    let greeting = greet(greeter_url, ca, source.clone()).await?;
    say(&format!("{greeting} ({DPOP_CLIENT}: Authorization: DPoP, a fresh proof per call)"));
    let url = format!("{api_url}/weatherforecast");
    let client = AuthorizedClient::new(http.clone(), source);
    let status = client.send(http.get(&url)).await.map_err(|e| DemoError::Api(e.to_string()))?.status();
    if !status.is_success() {
        return Err(DemoError::Api(format!("the REST API refused {DPOP_CLIENT}'s DPoP-bound token ({status})")));
    }
    say(&format!(
        "REST API /weatherforecast: {status} for {DPOP_CLIENT} (Authorization: DPoP, a fresh proof per call)"
    ));

    let stolen = token.access_token.expose();
    let thief = DpopKey::generate().map_err(token_error)?;
    let refused = |answer: Answer, api: &str| match answer {
        Answer::Served => Err(DemoError::Api(format!("the {api} served a stolen DPoP-bound token"))),
        refusal => Ok(refusal),
    };
    // §7.2: a DPoP-bound token is no bearer token.
    let how = "stolen DPoP-bound token replayed as Bearer";
    let grpc = refused(greeter_with_token(greeter_url, ca, stolen, Presenting::Bearer).await?, "Greeter")?;
    say(&format!("{how}: the Greeter refuses it ({grpc})"));
    let rest = refused(rest_with_token(http, &url, stolen, Presenting::Bearer).await?, "REST API")?;
    say(&format!("{how}: the REST API refuses it ({rest})"));
    // §4.3 item 12: the proof must be signed by the key the token is bound to, which the
    // thief does not have.
    let how = format!("stolen DPoP-bound token with the thief's own proof (jkt {})", short(&thief.thumbprint()));
    let grpc = refused(greeter_with_token(greeter_url, ca, stolen, Presenting::Dpop(&thief)).await?, "Greeter")?;
    say(&format!("{how}: the Greeter refuses it ({grpc})"));
    let rest = refused(rest_with_token(http, &url, stolen, Presenting::Dpop(&thief)).await?, "REST API")?;
    say(&format!("{how}: the REST API refuses it ({rest})"));
    Ok(())
}

/// A thumbprint's first characters: enough to tell two keys apart on screen.
fn short(thumbprint: &str) -> String {
    format!("{}...", thumbprint.get(..12).unwrap_or(thumbprint))
}

/// Issue 12: a token revoked at the authority stops working at the REST API within one long
/// poll of the revocation feed, though the API validates JWTs locally and has this one cached.
/// Returns how long after the revocation the API refused it.
async fn revoked_token_refused(
    http: &reqwest::Client,
    issuer: &tessera_types::Issuer,
    api: &str,
    source: TokenSource,
    mut feed: tokio::sync::watch::Receiver<tessera_guard::FeedStatus>,
) -> Result<Duration, DemoError> {
    let api_error = |e: reqwest::Error| DemoError::Api(e.to_string());
    let token = source.token().await.map_err(|e| DemoError::Token(e.to_string()))?.access_token;
    let call = || http.get(format!("{api}/weatherforecast")).bearer_auth(token.expose()).send();
    let before = call().await.map_err(api_error)?.status();
    if !before.is_success() {
        return Err(DemoError::Api(format!("the REST API refused a fresh token ({before})")));
    }
    let revoked_before = feed.borrow().revoked_tokens;
    let (id, secret) = seeded("background-service")?;
    let revoke = http
        .post(format!("{}/connect/revoke", issuer.as_str().trim_end_matches('/')))
        .basic_auth(id.as_str(), Some(secret.expose()))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={}", token.expose()))
        .send()
        .await
        .map_err(api_error)?;
    if !revoke.status().is_success() {
        return Err(DemoError::Api(format!("revocation refused ({})", revoke.status())));
    }
    let revoked_at = std::time::Instant::now();
    // The API's guard holds a long poll open: the server answers it as the revocation lands.
    tokio::time::timeout(Duration::from_secs(15), feed.wait_for(|s| s.revoked_tokens > revoked_before))
        .await
        .map_err(|_| DemoError::Api("the revocation did not reach the REST API within 15 s".into()))?
        .map_err(|_| DemoError::Api("the REST API's revocation feed stopped".into()))?;
    let after = call().await.map_err(api_error)?.status();
    if after != reqwest::StatusCode::UNAUTHORIZED {
        return Err(DemoError::Api(format!("the REST API still answers a revoked token with {after}")));
    }
    Ok(revoked_at.elapsed())
}
