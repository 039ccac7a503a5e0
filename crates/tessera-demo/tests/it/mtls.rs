//! The seed scenario's mutual-TLS client (RFC 8705 §2.2, `self_signed_tls_client_auth`):
//! `CC_mtls`, registered in `examples/seed.toml` by an inline certificate and no secret, logs in
//! with the published sample certificate and key, in `tessera demo` and on its own; a
//! certificate the seed did not register is refused.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tessera_client::{ClientConfig, ClientIdentity, TokenSource};
use tessera_demo::{DemoError, MTLS_CLIENT, demo_reporting, greet, sample_certificate, trusted_ca};
use tessera_testkit::jwt_payload;
use tessera_testkit::pki::{self, Subject};
use tessera_types::{ClientId, ScopeSet};

use crate::World;

/// The published sample, read from the repository rather than through the code under test.
const SAMPLE_PEM: &str = include_str!("../../../../examples/keys/cc-mtls.pem");

/// RFC 8705 §3.1 `x5t#S256` of the sample certificate, computed here: SHA-256 of the DER in
/// the PEM's CERTIFICATE block, base64url without padding.
fn sample_x5t_s256() -> String {
    let body: String = SAMPLE_PEM
        .lines()
        .skip_while(|l| *l != "-----BEGIN CERTIFICATE-----")
        .skip(1)
        .take_while(|l| *l != "-----END CERTIFICATE-----")
        .collect();
    let der = STANDARD.decode(body).unwrap();
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der).as_ref())
}

/// A source for `id` presenting `identity`, trusting the world's development CA.
fn source(w: &World, id: &str, identity: ClientIdentity) -> TokenSource {
    let config = ClientConfig::with_client_certificate(w.server().issuer.clone(), ClientId::new(id).unwrap(), identity)
        .scope(ScopeSet::parse("dataEventRecords").unwrap())
        .with_root_certificate(trusted_ca(&w.ca).unwrap());
    TokenSource::new(config)
}

#[tokio::test]
async fn rfc8705_2_2_the_seed_mtls_client_gets_its_greeting_with_the_sample_certificate_and_no_secret() {
    let w = World::start().await;
    let id = ClientId::new(MTLS_CLIENT).unwrap();
    assert!(tessera_demo::sample_secret(&id).is_none(), "examples/seed.toml gives it no secret");
    let identity = sample_certificate(&id).expect("a sample certificate");
    assert_eq!(identity.thumbprint().as_str(), sample_x5t_s256());
    let source = source(&w, MTLS_CLIENT, identity);
    // RFC 8705 §3: the token is bound to the certificate, so the Greeter takes it only over a
    // connection presenting that certificate.
    let pem = tessera_demo::sample_certificate_pem(&id).unwrap().as_bytes();
    let greeting = tessera_demo::greet_presenting(&w.greeter.url(), &w.ca, source.clone(), Some(pem)).await.unwrap();
    assert_eq!(greeting, "Greeting: Hello GreeterClient");
    let without = greet(&w.greeter.url(), &w.ca, source.clone()).await.unwrap_err().to_string();
    assert!(without.contains("Unauthenticated"), "a stolen certificate-bound token: {without}");
    let other = tessera_testkit::pki::self_signed(&tessera_testkit::pki::Subject::cn("thief"));
    let stolen =
        tessera_demo::greet_presenting(&w.greeter.url(), &w.ca, source.clone(), Some(other.identity_pem().as_bytes()))
            .await;
    assert!(stolen.unwrap_err().to_string().contains("Unauthenticated"), "over another certificate");
    let claims = jwt_payload(source.token().await.unwrap().access_token.expose());
    assert_eq!(claims["client_id"], MTLS_CLIENT);
    // §3.1: the token is bound to the sample certificate the inline seed entry registered.
    assert_eq!(claims["cnf"]["x5t#S256"], sample_x5t_s256(), "{claims}");
    // Other clients have no sample certificate: they keep their secrets and keys.
    assert!(sample_certificate(&ClientId::new("CC").unwrap()).is_none());
    assert!(sample_certificate(&ClientId::new("CC_private_key_jwt").unwrap()).is_none());
}

#[tokio::test]
async fn rfc8705_2_a_certificate_the_seed_did_not_register_is_refused_with_invalid_client() {
    let w = World::start().await;
    let before = w.server().tokens_issued();
    let explained = |r: Result<String, DemoError>, what: &str| match r {
        Err(DemoError::Token(m)) => assert!(m.contains("invalid_client") && m.contains("certificate"), "{what}: {m}"),
        other => panic!("{what}: {other:?}"),
    };
    // Another certificate for CC_mtls, with the sample's subject even: another thumbprint.
    let other = pki::self_signed(&Subject::cn("CC_mtls"));
    let impostor = ClientIdentity::from_pem(other.identity_pem().as_bytes()).unwrap();
    explained(greet(&w.greeter.url(), &w.ca, source(&w, MTLS_CLIENT, impostor)).await, "an unregistered certificate");
    // The sample certificate for a client that registered none (CC has a secret only).
    let sample = sample_certificate(&ClientId::new(MTLS_CLIENT).unwrap()).unwrap();
    explained(greet(&w.greeter.url(), &w.ca, source(&w, "CC", sample)).await, "another client's certificate");
    assert_eq!(w.server().tokens_issued(), before, "nothing issued");
}

#[tokio::test]
async fn tessera_demo_shows_the_mtls_client_calling_the_greeter() {
    // Not the directory the private_key_jwt test's demo uses: both may run at once.
    let dir = std::env::temp_dir().join(format!("tessera-demo-mtls-test-{}", std::process::id()));
    let lines = Mutex::new(Vec::new());
    let result = demo_reporting(&dir, &|line| lines.lock().unwrap().push(line.to_owned())).await;
    let _ = std::fs::remove_dir_all(&dir);
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
    let certified = format!(
        "Greeting: Hello GreeterClient ({MTLS_CLIENT}: self_signed_tls_client_auth, certificate x5t#S256 {}, no secret)",
        sample_x5t_s256()
    );
    let at = lines.iter().position(|l| l == &certified).unwrap_or_else(|| panic!("{lines:#?}"));
    let finished = lines.iter().position(|l| l == "demo finished: everything shut down").unwrap();
    assert!(at < finished, "{lines:#?}");
}
