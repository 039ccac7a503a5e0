//! Several instances sharing one PostgreSQL, and a PostgreSQL restart under a running server.
//! Skipped (with a note) where PostgreSQL is not installed, unless TESSERA_REQUIRE_POSTGRES=1.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode};
use tessera_server::clock::SystemRandom;
use tessera_testkit::postgres as testing;

use crate::cli::{Served, ok, register_api, serve_command, tessera};
use crate::harness::{TestServer, post_basic};
use tessera_types::{Issuer, Resource};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(dir: &Path, db: &str, port: u16, issuer: &str) -> std::process::Child {
    let listen = format!("127.0.0.1:{port}");
    serve_command(dir, &["--database-url", db, "--listen", &listen, "--issuer", issuer])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_listening(child: &mut std::process::Child) {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.starts_with("tessera listening on"))), "instance did not start");
    std::thread::spawn(move || for _ in lines {});
}

async fn form(http: &reqwest::Client, url: String, id: &str, secret: &str, body: &str) -> (u16, Value) {
    let (s, _, v) = post_basic(http, &url, id, secret, body).await;
    (s, v)
}

async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_instances_one_database_one_issuer() {
    let Some(base) = testing::shared_base_url() else {
        eprintln!("SKIPPED two_instances_one_database_one_issuer: no PostgreSQL");
        return;
    };
    let db = testing::fresh_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One development certificate and one key-encryption key for both (made before they start,
    // so the two can start at the same moment).
    let dev = tessera_server::tls::dev_cert(d).unwrap();
    tessera_server::keys::Kek::load_or_create(&d.join("key-encryption.key"), &SystemRandom::default()).unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("https://localhost:{port_a}");
    // Started together: key generation must not race.
    let mut a = spawn(d, &db, port_a, &issuer);
    let mut b = spawn(d, &db, port_b, &issuer);
    wait_listening(&mut a);
    wait_listening(&mut b);
    let _a = Served { child: a, addr: String::new(), ca: None };
    let _b = Served { child: b, addr: String::new(), ca: None };
    let http = crate::harness::client_for(&dev.ca);
    let (url_a, url_b) = (format!("https://localhost:{port_a}"), format!("https://localhost:{port_b}"));
    let jwks = |u: String| {
        let http = http.clone();
        async move { http.get(format!("{u}/.well-known/jwks")).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (ja, jb) = (jwks(url_a.clone()).await, jwks(url_b.clone()).await);
    assert_eq!(ja["keys"].as_array().unwrap().len(), 1, "one key for two instances started together: {ja}");
    assert_eq!(ja, jb);

    // A client added through the CLI (any host with the database URL) is usable on both.
    let store = ["--database-url", db.as_str()];
    register_api(d, &store, &[("REF", "ref_secret", Some("reference")), ("CC", "cc_secret", None)]);
    for u in [&url_a, &url_b] {
        let u = u.clone();
        let http = http.clone();
        eventually("client known on both", || {
            let (u, http) = (u.clone(), http.clone());
            async move {
                form(&http, format!("{u}/connect/token"), "REF", "ref_secret", "grant_type=client_credentials").await.0
                    == 200
            }
        })
        .await;
    }
    // A token from A is active on B; revoked on B, inactive on A at once.
    let (_, t) =
        form(&http, format!("{url_a}/connect/token"), "REF", "ref_secret", "grant_type=client_credentials").await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let introspect = |u: &str| format!("{u}/connect/introspect");
    let body = format!("token={token}");
    assert_eq!(form(&http, introspect(&url_b), "rs_dataEventRecordsApi", "api_secret", &body).await.1["active"], true);
    assert_eq!(form(&http, format!("{url_b}/connect/revoke"), "REF", "ref_secret", &body).await.0, 200);
    assert_eq!(
        form(&http, introspect(&url_a), "rs_dataEventRecordsApi", "api_secret", &body).await.1,
        serde_json::json!({"active": false})
    );

    // A key rotated on one is published by both, and tokens signed by either validate.
    ok(d, &[&["key", "rotate", "--alg", "ES256", "--now"][..], &store].concat());
    for u in [&url_a, &url_b] {
        let u = u.clone();
        eventually("rotated key published", || {
            let u = u.clone();
            let jwks = jwks.clone();
            async move { jwks(u).await["keys"].as_array().unwrap().len() == 2 }
        })
        .await;
    }
    let guard = Guard::new(
        GuardConfig::new(Issuer::new(&issuer).unwrap(), Resource::new("rs_dataEventRecordsApi").unwrap(), Mode::Jwt)
            .with_http_client(http.clone()),
    )
    .unwrap();
    let _ = GuardLayer::new(guard.clone());
    let mut kids = Vec::new();
    for u in [&url_a, &url_b] {
        let (s, t) =
            form(&http, format!("{u}/connect/token"), "CC", "cc_secret", "grant_type=client_credentials").await;
        assert_eq!(s, 200);
        let token = t["access_token"].as_str().unwrap();
        let p = guard.authenticate(token).await.unwrap_or_else(|e| panic!("token from {u}: {e}"));
        assert_eq!(p.client_id.as_ref().map(|c| c.as_str()), Some("CC"));
        kids.push(jsonwebtoken::decode_header(token).unwrap().kid.unwrap());
    }
    assert_eq!(kids[0], kids[1], "both sign with the new active key");
}

#[tokio::test]
async fn a_postgresql_restart_under_a_running_server() {
    if testing::shared_base_url().is_none() {
        eprintln!("SKIPPED a_postgresql_restart_under_a_running_server: no PostgreSQL");
        return;
    }
    // A private PostgreSQL, since this test stops it.
    let pg = testing::PgServer::start_new().expect("private PostgreSQL");
    let db = testing::fresh_database(&pg.base_url()).await;
    let mut file = crate::registry::seed_config_for_tests();
    file.registry_poll_ms = Some(50);
    file.database_url = Some(tessera_store::pg_url::DatabaseUrl::new(db.clone()));
    file.database_pool_size = Some(4);
    let server = TestServer::builder().file(file).start().await;
    let (http, url) = (server.http.clone(), server.base.clone());
    let token = |id: &'static str, secret: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move { form(&http, format!("{url}/connect/token"), id, secret, "grant_type=client_credentials").await }
    };
    assert_eq!(token("CC", "cc_secret").await.0, 200);
    let (s, reference) = token("REF", "ref_secret").await;
    assert_eq!(s, 200);
    let body = format!("token={}", reference["access_token"].as_str().unwrap());

    assert!(pg.stop(), "PostgreSQL stopped");
    // JWTs for known clients keep coming from memory ...
    assert_eq!(token("CC", "cc_secret").await.0, 200);
    // ... what needs the database fails with 503 temporarily_unavailable, never a wrong answer.
    let (s, v) = token("REF", "ref_secret").await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");
    let (s, v) = form(&http, format!("{url}/connect/introspect"), "api", "api_secret", &body).await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");

    assert!(pg.start(), "PostgreSQL started again");
    // The pool reconnects by itself.
    eventually("reference issuance after the restart", || {
        let t = token("REF", "ref_secret");
        async move { t.await.0 == 200 }
    })
    .await;
    let (s, v) = form(&http, format!("{url}/connect/introspect"), "api", "api_secret", &body).await;
    assert_eq!((s, &v["active"]), (200, &Value::Bool(true)), "the token issued before the restart is still there");
    server.stop().await;
}

/// Issue 10: the CLI creates no tables in a database without a Tessera store; `init` does.
#[tokio::test]
async fn issue10_cli_refuses_a_database_without_a_store_and_init_creates_it() {
    let Some(base) = testing::shared_base_url() else {
        eprintln!("SKIPPED issue10_cli_refuses_a_database_without_a_store_and_init_creates_it: no PostgreSQL");
        return;
    };
    let db = testing::fresh_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| tessera(d, &[args, &["--database-url", &db]].concat());
    let out = run(&["scope", "add", "s", "--resource", "r"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Tessera store in PostgreSQL") && err.contains("tessera init"), "{err}");
    assert!(!d.join("key-encryption.key").exists());
    // Still nothing there: the refused command created no table.
    assert!(!run(&["scope", "list"]).status.success());
    let out = run(&["init"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.join("key-encryption.key").exists());
    assert!(run(&["scope", "add", "s", "--resource", "r"]).status.success());
    assert!(String::from_utf8_lossy(&run(&["key", "list"]).stdout).contains("ES256\tactive"));
}
