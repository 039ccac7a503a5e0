//! Mutual-TLS client authentication (RFC 8705 §2) from the client's side: a token source
//! presenting a client certificate to the real server's TLS listener (tessera-testkit), which
//! checks it as `self_signed_tls_client_auth` (§2.2, a registered thumbprint) or
//! `tls_client_auth` (§2.1, a client CA and a registered subject) and binds the token to it
//! (§3); and what goes on the wire, to a fake authority that records it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tessera_client::{ClientConfig, ClientError, ClientIdentity, IdentityError, TokenSource};
use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_testkit::pki::{self, Ca, ClientCert, Subject};
use tessera_testkit::{Authority as _, TestServer, client, jwt_payload, scope};
use tessera_types::{ClientAuthMethod, ClientId, ErrorCode, Issuer, Resource, ScopeSet};

/// RFC 8705 §3.1 `x5t#S256`, computed here rather than by the code under test: SHA-256 of the
/// certificate's DER, base64url without padding.
fn x5t_s256(cert: &ClientCert) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn identity(cert: &ClientCert) -> ClientIdentity {
    ClientIdentity::from_pem(cert.identity_pem().as_bytes()).unwrap()
}

/// A source for client `id` presenting `cert`, trusting the server's development CA.
fn source(kit: &TestServer, id: &str, cert: &ClientCert) -> TokenSource {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(kit.ca()).unwrap()).unwrap();
    let config =
        ClientConfig::with_client_certificate(kit.running().issuer.clone(), ClientId::new(id).unwrap(), identity(cert))
            .scope(ScopeSet::parse("dataEventRecords").unwrap())
            .with_root_certificate(ca);
    TokenSource::new(config)
}

/// The token's `cnf` (RFC 8705 §3.1), as the server wrote it in the JWT.
fn cnf(token: &tessera_client::Token) -> serde_json::Value {
    jwt_payload(token.access_token.expose())["cnf"].clone()
}

fn refused(result: Result<tessera_client::Token, ClientError>, what: &str) {
    match result {
        Err(ClientError::Refused { error: ErrorCode::InvalidClient, .. }) => {}
        other => panic!("{what}: {other:?}"),
    }
}

/// A TLS server with scope dataEventRecords and client `svc` allowed it, registered for
/// `self_signed_tls_client_auth` with the certificate returned (its PEM written to a file, as
/// `tessera client add --tls-client-cert FILE` takes it) and no secret.
async fn with_self_signed_svc() -> (TestServer, ClientCert) {
    let kit = TestServer::start().await;
    kit.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
    let cert = pki::self_signed(&Subject::cn("svc"));
    let file = kit.dir.path().join("svc-cert.pem");
    std::fs::write(&file, &cert.cert_pem).unwrap();
    let spec = ClientSpec {
        scopes: vec![scope("dataEventRecords")],
        tls_client_cert_files: vec![file],
        token_endpoint_auth_method: Some(ClientAuthMethod::SelfSignedTlsClientAuth),
        ..client("svc")
    };
    assert!(kit.add_client_with(spec).await.is_none(), "a client given a certificate only gets no secret");
    (kit, cert)
}

#[tokio::test]
async fn rfc8705_2_2_a_registered_self_signed_certificate_gets_a_token_bound_to_its_thumbprint() {
    let (kit, cert) = with_self_signed_svc().await;
    let source = source(&kit, "svc", &cert);
    let before = kit.running().tokens_issued();

    let first = source.token().await.unwrap();
    let claims = jwt_payload(first.access_token.expose());
    assert_eq!((&claims["client_id"], &claims["scope"]), (&json!("svc"), &json!("dataEventRecords")), "{claims}");
    // §3.1: bound to the certificate the handshake presented, as computed independently.
    assert_eq!(cnf(&first), json!({ "x5t#S256": x5t_s256(&cert) }));
    assert_eq!(identity(&cert).thumbprint().as_str(), x5t_s256(&cert), "the identity names the same thumbprint");

    // A forced refresh authenticates again with the same certificate, on the source's own
    // HTTP client.
    source.invalidate(&first.access_token);
    let second = source.token().await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(cnf(&second), cnf(&first));
    assert_eq!(kit.running().tokens_issued() - before, 2, "counted at the server");
    assert_eq!(source.requests_sent(), 2, "no retry hid a refusal");
}

#[tokio::test]
async fn rfc8705_2_a_certificate_the_client_did_not_register_is_invalid_client_and_not_retried() {
    let (kit, _registered) = with_self_signed_svc().await;
    let before = kit.running().tokens_issued();
    // The same subject, another key: another thumbprint.
    let other = pki::self_signed(&Subject::cn("svc"));
    let impostor = source(&kit, "svc", &other);
    refused(impostor.token().await, "an unregistered certificate");
    assert_eq!(impostor.requests_sent(), 1, "a refusal is not retried");
    // The server knows no client by that id at all.
    refused(source(&kit, "nobody", &other).token().await, "an unknown client");
    assert_eq!(kit.running().tokens_issued(), before, "nothing issued");
}

#[tokio::test]
async fn rfc8705_2_1_a_certificate_from_the_client_ca_with_the_registered_san_uri_gets_a_bound_token() {
    let spiffe = "spiffe://tessera.test/ns/billing/sa/worker";
    let ca = Ca::new("Tessera test client CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let kit = TestServer::builder()
        .file(FileConfig { mtls_client_ca_file: Some(ca_file), ..Default::default() })
        .start()
        .await;
    kit.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
    let spec = ClientSpec {
        scopes: vec![scope("dataEventRecords")],
        tls_client_auth_san_uri: Some(spiffe.into()),
        token_endpoint_auth_method: Some(ClientAuthMethod::TlsClientAuth),
        ..client("worker")
    };
    assert!(kit.add_client_with(spec).await.is_none(), "no secret");
    let with_uri = |uri: &str| Subject { san_uri: vec![uri.into()], ..Subject::cn("worker") };

    let issued = ca.issue(&with_uri(spiffe));
    let token = source(&kit, "worker", &issued).token().await.unwrap();
    assert_eq!(jwt_payload(token.access_token.expose())["client_id"], "worker");
    assert_eq!(cnf(&token), json!({ "x5t#S256": x5t_s256(&issued) }));

    // §2.1.2: the CA's signature is not enough, the registered SAN URI must be there too...
    let elsewhere = ca.issue(&with_uri("spiffe://tessera.test/ns/billing/sa/other"));
    refused(source(&kit, "worker", &elsewhere).token().await, "another SAN URI from the same CA");
    // ...and the SAN URI is not enough without the CA: a self-signed certificate claiming it.
    let forged = pki::self_signed(&with_uri(spiffe));
    refused(source(&kit, "worker", &forged).token().await, "a self-signed certificate with the SAN URI");
}

/// What a fake authority saw of a token request: the path, the Authorization header, the form.
type Seen = Arc<Mutex<Vec<(String, bool, Vec<(String, String)>)>>>;

/// A fake authority recording token requests at `/token` and, if it publishes
/// `mtls_endpoint_aliases` (`aliased`), at `/mtls/token`.
async fn recording_authority(aliased: bool) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen: Seen = Arc::default();
    let mut metadata = json!({"issuer": url, "token_endpoint": format!("{url}/token")});
    if aliased {
        metadata["mtls_endpoint_aliases"] = json!({"token_endpoint": format!("{url}/mtls/token")});
    }
    let token = |path: &'static str| {
        let record = seen.clone();
        post(move |headers: HeaderMap, body: String| async move {
            let form = form_urlencoded_pairs(&body);
            record.lock().unwrap().push((path.to_owned(), headers.contains_key("authorization"), form));
            axum::Json(json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 60}))
        })
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(move || async move { axum::Json(metadata) }))
        .route("/token", token("/token"))
        .route("/mtls/token", token("/mtls/token"));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn form_urlencoded_pairs(body: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{body}")).unwrap().query_pairs().into_owned().collect()
}

#[tokio::test]
async fn rfc8705_2_the_form_names_the_client_by_client_id_alone_with_no_secret_or_authorization() {
    let (url, seen) = recording_authority(false).await;
    let cert = pki::self_signed(&Subject::cn("svc"));
    let mut config = ClientConfig::with_client_certificate(
        Issuer::new(&url).unwrap(),
        ClientId::new("svc").unwrap(),
        identity(&cert),
    )
    .scope(ScopeSet::parse("a b").unwrap())
    .allow_http();
    config.resources = vec![Resource::new("https://api.example").unwrap()];
    assert_eq!(TokenSource::new(config).token().await.unwrap().access_token.expose(), "tok");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (path, authorization, form) = &seen[0];
    assert_eq!(path, "/token", "no alias published: the conventional endpoint");
    assert!(!authorization, "no Authorization header");
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("grant_type", "client_credentials"),
            ("scope", "a b"),
            ("resource", "https://api.example"),
            ("client_id", "svc"),
        ],
        "no client_secret, no client_assertion"
    );
}

#[tokio::test]
async fn rfc8705_5_a_certificate_goes_to_the_published_mtls_alias_of_the_token_endpoint() {
    let (url, seen) = recording_authority(true).await;
    let cert = pki::self_signed(&Subject::cn("svc"));
    let issuer = Issuer::new(&url).unwrap();
    let certified =
        ClientConfig::with_client_certificate(issuer.clone(), ClientId::new("svc").unwrap(), identity(&cert));
    TokenSource::new(certified.allow_http()).token().await.unwrap();
    // A secret is no mutual TLS: the conventional endpoint.
    let secret =
        ClientConfig::new(issuer, ClientId::new("CC").unwrap(), tessera_types::ClientSecret::new("s").unwrap());
    TokenSource::new(secret.allow_http()).token().await.unwrap();
    let paths: Vec<String> = seen.lock().unwrap().iter().map(|(path, ..)| path.clone()).collect();
    assert_eq!(paths, ["/mtls/token", "/token"]);
}

#[tokio::test]
async fn a_certificate_config_given_an_http_client_is_refused_before_anything_is_sent() {
    // A client passed in could not present the certificate: the token request would go out
    // unauthenticated. Refused on the first call, not retried, nothing sent.
    let (url, seen) = recording_authority(false).await;
    let cert = pki::self_signed(&Subject::cn("svc"));
    let config = ClientConfig::with_client_certificate(
        Issuer::new(&url).unwrap(),
        ClientId::new("svc").unwrap(),
        identity(&cert),
    )
    .allow_http()
    .with_http_client(reqwest::Client::new());
    let source = TokenSource::new(config);
    match source.token().await {
        Err(ClientError::Credentials(m)) => assert!(m.contains("with_root_certificate"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(source.requests_sent(), 0);
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the authority");
}

#[test]
fn a_client_identity_needs_one_certificate_chain_and_its_own_private_key() {
    let cert = pki::self_signed(&Subject::cn("svc"));
    let other = pki::self_signed(&Subject::cn("other"));
    let ok = ClientIdentity::from_pem(cert.identity_pem().as_bytes()).unwrap();
    assert_eq!(ok.thumbprint().as_str(), x5t_s256(&cert));
    // Key first is as good (curl takes either order).
    let key_first = format!("{}{}", cert.key_pem, cert.cert_pem);
    assert_eq!(ClientIdentity::from_pem(key_first.as_bytes()).unwrap().thumbprint(), ok.thumbprint());

    assert_eq!(ClientIdentity::from_pem(cert.cert_pem.as_bytes()).unwrap_err(), IdentityError::NoPrivateKey);
    assert_eq!(ClientIdentity::from_pem(cert.key_pem.as_bytes()).unwrap_err(), IdentityError::NoCertificate);
    assert_eq!(ClientIdentity::from_pem(b"not pem at all").unwrap_err(), IdentityError::NoCertificate);
    let two_keys = format!("{}{}{}", cert.cert_pem, cert.key_pem, other.key_pem);
    assert_eq!(ClientIdentity::from_pem(two_keys.as_bytes()).unwrap_err(), IdentityError::SeveralKeys(2));
    let mismatched = format!("{}{}", cert.cert_pem, other.key_pem);
    assert!(matches!(ClientIdentity::from_pem(mismatched.as_bytes()), Err(IdentityError::Key(_))));
    // The errors say what to give.
    assert!(IdentityError::NoPrivateKey.to_string().contains("private key"));
    assert!(IdentityError::NoCertificate.to_string().contains("certificate"));
}

#[test]
fn debug_names_the_certificate_by_thumbprint_and_never_prints_the_private_key() {
    let cert = pki::self_signed(&Subject::cn("svc"));
    let config = ClientConfig::with_client_certificate(
        Issuer::new("https://as.example").unwrap(),
        ClientId::new("svc").unwrap(),
        identity(&cert),
    );
    let printed = format!("{config:?}");
    assert!(printed.contains(&x5t_s256(&cert)), "{printed}");
    for line in cert.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!printed.contains(line), "{printed}");
    }
}
