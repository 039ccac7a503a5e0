//! Mutual-TLS client authentication (RFC 8705, issue 13) over real TLS connections: a client
//! presenting its registered self-signed certificate, or a certificate from the configured
//! client CA carrying its registered subject, gets a certificate-bound token; every other
//! certificate, and none, is `invalid_client`. Behind a proxy, the forwarded certificate
//! counts only from a trusted address.

use base64::Engine as _;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_testkit::pki::{Ca, ClientCert, Subject, self_signed};
use tessera_testkit::{Authority as _, Reply, assert_oauth_error, client, jwt_payload};
use tessera_types::ClientAuthMethod;

use crate::cli::{ok, tessera};
use crate::harness::{FORM, TestServer, split};

/// RFC 8705 §3.1: base64url(SHA-256(DER)), computed here independently of the server.
fn x5t_s256(cert: &ClientCert) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

fn permissive(mut file: FileConfig) -> FileConfig {
    // The refusal tables fail many times in a row from one address: backoff is tested apart.
    file.limits.failed_auth_free_attempts.get_or_insert(1000);
    file
}

/// A server trusting `ca` for `tls_client_auth` (the file lives in the data directory).
async fn server_with_ca(ca: &Ca) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let file = FileConfig { mtls_client_ca_file: Some(ca_file), ..permissive(FileConfig::default()) };
    let s = TestServer::builder().file(file).start().await;
    s.add_scope("api", &["rs_api"]).await;
    (s, dir)
}

fn pem_file(dir: &tempfile::TempDir, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A client of `s` that presents `cert` in the TLS handshake (and trusts the dev CA).
fn http_with(s: &TestServer, cert: Option<&ClientCert>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(s.ca()).unwrap()).unwrap();
    let mut b = reqwest::Client::builder().add_root_certificate(ca);
    if let Some(cert) = cert {
        b = b.identity(reqwest::Identity::from_pem(cert.identity_pem().as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn post(s: &TestServer, http: &reqwest::Client, path: &str, body: &str) -> Reply {
    split(http.post(s.url(path)).header(CONTENT_TYPE, FORM).body(body.to_owned()).send().await.unwrap()).await
}

async fn token(s: &TestServer, cert: Option<&ClientCert>, client_id: &str) -> Reply {
    post(s, &http_with(s, cert), "/connect/token", &format!("grant_type=client_credentials&client_id={client_id}"))
        .await
}

fn refused(reply: &Reply, what: &str) {
    assert_eq!(reply.0, 401, "{what}: {}", reply.2);
    assert_oauth_error(reply, 401, "invalid_client");
}

fn with_scope(id: &str) -> ClientSpec {
    ClientSpec { scopes: vec![tessera_testkit::scope("api")], ..client(id) }
}

#[tokio::test]
async fn rfc8705_2_2_a_registered_self_signed_certificate_gets_a_certificate_bound_token() {
    let (s, dir) = server_with_ca(&Ca::new("Client CA")).await;
    let mine = self_signed(&Subject::cn("svc"));
    let rotated = self_signed(&Subject::cn("svc next"));
    let theirs = self_signed(&Subject::cn("other"));
    let generated = s
        .add_client_with(ClientSpec {
            tls_client_cert_files: vec![
                pem_file(&dir, "svc.pem", &mine.cert_pem),
                pem_file(&dir, "next.pem", &rotated.cert_pem),
            ],
            token_format: Some("reference".parse().unwrap()),
            ..with_scope("svc")
        })
        .await;
    assert!(generated.is_none(), "a client with certificates and no secret gets no secret");
    s.add_client_with(ClientSpec {
        tls_client_cert_files: vec![pem_file(&dir, "other.pem", &theirs.cert_pem)],
        ..with_scope("other")
    })
    .await;

    let (status, _, body) = token(&s, Some(&mine), "svc").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer", "RFC 8705 §3: still a Bearer token");
    let reference = body["access_token"].as_str().unwrap().to_owned();
    // Either registered certificate works (rotation).
    assert_eq!(token(&s, Some(&rotated), "svc").await.0, 200);

    // RFC 8705 §3.2: introspection reports the binding; the API introspects with a secret.
    s.add_client("rs_api", "rs_api_secret_0123456789", &[], &["ept:introspection"]).await;
    let answer = s.introspect_as("rs_api", "rs_api_secret_0123456789", &reference).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["cnf"], json!({ "x5t#S256": x5t_s256(&mine) }), "{answer}");

    // A JWT client: the binding is in the token itself (RFC 8705 §3.1).
    let (status, _, body) = token(&s, Some(&theirs), "other").await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], x5t_s256(&theirs), "{claims}");
    assert_ne!(x5t_s256(&theirs), x5t_s256(&mine));

    let stranger = self_signed(&Subject::cn("svc"));
    let cases: Vec<(&str, Option<&ClientCert>, &str)> = vec![
        ("no certificate", None, "svc"),
        ("an unregistered certificate with the same subject", Some(&stranger), "svc"),
        ("another client's certificate", Some(&theirs), "svc"),
        ("an unknown client", Some(&mine), "nobody"),
    ];
    for (what, cert, id) in cases {
        refused(&token(&s, cert, id).await, what);
    }
    // A certificate is no excuse for leaving out client_id (RFC 8705 §2).
    let no_id = post(&s, &http_with(&s, Some(&mine)), "/connect/token", "grant_type=client_credentials").await;
    refused(&no_id, "no client_id");
    // Secret clients keep working on a connection that presents a certificate, unbound.
    s.add_client("secret-client", "secret_client_secret_0123", &["api"], &[]).await;
    let basic = http_with(&s, Some(&mine))
        .post(s.url("/connect/token"))
        .basic_auth("secret-client", Some("secret_client_secret_0123"))
        .header(CONTENT_TYPE, FORM)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let (status, _, body) = split(basic).await;
    assert_eq!(status, 200, "{body}");
    assert!(jwt_payload(body["access_token"].as_str().unwrap()).get("cnf").is_none(), "a secret client is not bound");
}

#[tokio::test]
async fn rfc8705_2_1_a_certificate_from_the_client_ca_with_the_registered_subject_gets_a_bound_token() {
    let ca = Ca::new("Tessera test client CA");
    let (s, _dir) = server_with_ca(&ca).await;
    let spiffe = "spiffe://example.org/ns/prod/sa/billing";
    s.add_client_with(ClientSpec {
        tls_client_auth_subject_dn: Some("O=Example,CN=billing".into()),
        ..with_scope("by-dn")
    })
    .await;
    s.add_client_with(ClientSpec { tls_client_auth_san_uri: Some(spiffe.into()), ..with_scope("by-uri") }).await;
    s.add_client_with(ClientSpec {
        tls_client_auth_san_dns: Some("billing.example.org".into()),
        token_endpoint_auth_method: Some(ClientAuthMethod::TlsClientAuth),
        ..with_scope("by-dns")
    })
    .await;
    let good = ca.issue(&Subject {
        dn: vec![(rcgen_dn::ORGANIZATION, "Example".into()), (rcgen_dn::COMMON_NAME, "billing".into())],
        san_dns: vec!["billing.example.org".into()],
        san_uri: vec![spiffe.into()],
        years: None,
    });
    for id in ["by-dn", "by-uri", "by-dns"] {
        let (status, _, body) = token(&s, Some(&good), id).await;
        assert_eq!(status, 200, "{id}: {body}");
        let claims = jwt_payload(body["access_token"].as_str().unwrap());
        assert_eq!(claims["cnf"]["x5t#S256"], x5t_s256(&good), "{id}: {claims}");
    }
    let year = tessera_testkit::pki::this_year();
    let same_subject = |years| Subject { years, ..good_subject(spiffe) };
    let other_ca = Ca::new("Tessera test client CA").issue(&same_subject(None));
    let self_made = self_signed(&same_subject(None));
    let expired = ca.issue(&same_subject(Some((year - 3, year - 1))));
    let other_subject = ca.issue(&Subject {
        dn: vec![(rcgen_dn::ORGANIZATION, "Example".into()), (rcgen_dn::COMMON_NAME, "billing-2".into())],
        san_dns: vec!["billing-2.example.org".into()],
        san_uri: vec![format!("{spiffe}-2")],
        years: None,
    });
    for id in ["by-dn", "by-uri", "by-dns"] {
        refused(&token(&s, Some(&other_ca), id).await, &format!("{id}: a certificate from another CA"));
        refused(&token(&s, Some(&self_made), id).await, &format!("{id}: self-signed with the same subject"));
        refused(&token(&s, Some(&expired), id).await, &format!("{id}: an expired certificate"));
        refused(&token(&s, Some(&other_subject), id).await, &format!("{id}: another subject"));
        refused(&token(&s, None, id).await, &format!("{id}: no certificate"));
    }
    // Discovery (RFC 8705 §3.3, RFC 8414 §2) says so.
    let doc: Value = s.get_json("/.well-known/oauth-authorization-server").await;
    assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
    for key in [
        "token_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        let methods = doc[key].as_array().unwrap();
        assert!(
            methods.contains(&json!("tls_client_auth")) && methods.contains(&json!("self_signed_tls_client_auth")),
            "{key}: {methods:?}"
        );
    }
}

fn good_subject(spiffe: &str) -> Subject {
    Subject {
        dn: vec![(rcgen_dn::ORGANIZATION, "Example".into()), (rcgen_dn::COMMON_NAME, "billing".into())],
        san_dns: vec!["billing.example.org".into()],
        san_uri: vec![spiffe.into()],
        years: None,
    }
}

mod rcgen_dn {
    use tessera_testkit::pki::DnType;
    pub const COMMON_NAME: DnType = DnType::CommonName;
    pub const ORGANIZATION: DnType = DnType::OrganizationName;
}

#[tokio::test]
async fn without_a_client_ca_only_self_signed_is_offered_and_a_method_restriction_holds() {
    let s = TestServer::builder().file(permissive(FileConfig::default())).start().await;
    s.add_scope("api", &["rs_api"]).await;
    let doc: Value = s.get_json("/.well-known/openid-configuration").await;
    let methods = doc["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("self_signed_tls_client_auth")));
    assert!(!methods.contains(&json!("tls_client_auth")), "no client CA: {methods:?}");
    // A client with a secret and a certificate, restricted to the certificate.
    let dir = tempfile::tempdir().unwrap();
    let cert = self_signed(&Subject::cn("both"));
    s.add_client_with(ClientSpec {
        secret: tessera_testkit::secret("both_secret_0123456789abc"),
        tls_client_cert_files: vec![pem_file(&dir, "both.pem", &cert.cert_pem)],
        token_endpoint_auth_method: Some(ClientAuthMethod::SelfSignedTlsClientAuth),
        ..with_scope("both")
    })
    .await;
    assert_eq!(token(&s, Some(&cert), "both").await.0, 200);
    let basic = s.token_basic("both", "both_secret_0123456789abc", "grant_type=client_credentials").await;
    refused(&basic, "the secret of a client restricted to self_signed_tls_client_auth");
    // A tls_client_auth subject with no client CA configured never authenticates.
    s.add_client_with(ClientSpec { tls_client_auth_san_dns: Some("x.example".into()), ..with_scope("no-ca") }).await;
    let from_some_ca =
        Ca::new("Unconfigured").issue(&Subject { san_dns: vec!["x.example".into()], ..Subject::cn("x") });
    refused(&token(&s, Some(&from_some_ca), "no-ca").await, "tls_client_auth without mtls_client_ca_file");
}

#[tokio::test]
async fn a_forwarded_certificate_counts_only_from_a_trusted_proxy() {
    let cert = self_signed(&Subject::cn("behind-proxy"));
    let escaped: String = cert
        .cert_pem
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    for (proxies, trusted) in [(vec!["127.0.0.1".parse().unwrap()], true), (vec!["10.9.9.9".parse().unwrap()], false)] {
        let file = FileConfig {
            mtls_client_cert_header: Some("X-Client-Cert".into()),
            mtls_trusted_proxies: proxies,
            ..permissive(FileConfig::default())
        };
        let s = TestServer::builder().plain_http().file(file).start().await;
        s.add_scope("api", &["rs_api"]).await;
        let dir = tempfile::tempdir().unwrap();
        s.add_client_with(ClientSpec {
            tls_client_cert_files: vec![pem_file(&dir, "c.pem", &cert.cert_pem)],
            ..with_scope("proxied")
        })
        .await;
        let r = s
            .http
            .post(s.url("/connect/token"))
            .header(CONTENT_TYPE, FORM)
            .header("x-client-cert", escaped.as_str())
            .body("grant_type=client_credentials&client_id=proxied")
            .send()
            .await
            .unwrap();
        let reply = split(r).await;
        if trusted {
            assert_eq!(reply.0, 200, "{}", reply.2);
            let claims = jwt_payload(reply.2["access_token"].as_str().unwrap());
            assert_eq!(claims["cnf"]["x5t#S256"], x5t_s256(&cert));
        } else {
            refused(&reply, "the header from an address that is not a trusted proxy");
        }
    }
}

#[test]
fn the_cli_registers_certificates_by_thumbprint_and_refuses_keys_and_two_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&data, &["init"]);
    let cert = self_signed(&Subject::cn("cli"));
    let cert_file = pem_file(&dir, "cert.pem", &cert.cert_pem);
    let with_key = pem_file(&dir, "with-key.pem", &cert.identity_pem());
    let stdout = ok(&data, &["client", "add", "cli-mtls", "--tls-client-cert", cert_file.to_str().unwrap()]);
    assert!(!stdout.contains("client_secret:"), "no secret generated for a certificate client: {stdout}");
    let show = ok(&data, &["client", "show", "cli-mtls"]);
    let shown: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(shown["tls_client_certificates"], json!([{ "x5t#S256": x5t_s256(&cert) }]), "{shown}");
    assert!(!show.contains("BEGIN CERTIFICATE"), "only the thumbprint is kept");

    let refused_key = tessera(&data, &["client", "add", "k", "--tls-client-cert", with_key.to_str().unwrap()]);
    assert!(!refused_key.status.success());
    assert!(String::from_utf8_lossy(&refused_key.stderr).contains("private key"), "{refused_key:?}");
    let two = tessera(
        &data,
        &["client", "add", "two", "--tls-client-auth-subject-dn", "CN=a", "--tls-client-auth-san-dns", "a.example"],
    );
    assert!(!two.status.success(), "two tls_client_auth subjects");
    let restricted = tessera(&data, &["client", "add", "r", "--token-endpoint-auth-method", "tls_client_auth"]);
    assert!(!restricted.status.success(), "tls_client_auth without a subject");
    assert!(String::from_utf8_lossy(&restricted.stderr).contains("needs a subject"), "{restricted:?}");
    let bad_dn = tessera(&data, &["client", "add", "dn", "--tls-client-auth-subject-dn", "not a dn"]);
    assert!(!bad_dn.status.success(), "a DN that is not RFC 4514");
    // Rotation: the new certificate replaces the old; the thumbprint follows.
    let next = self_signed(&Subject::cn("cli next"));
    let next_file = pem_file(&dir, "next.pem", &next.cert_pem);
    ok(&data, &["client", "update", "cli-mtls", "--tls-client-cert", next_file.to_str().unwrap()]);
    let shown: Value = serde_json::from_str(&ok(&data, &["client", "show", "cli-mtls"])).unwrap();
    assert_eq!(shown["tls_client_certificates"], json!([{ "x5t#S256": x5t_s256(&next) }]), "{shown}");
}
