//! The `tessera` binary as a user runs it: `serve` in one process, the CLI in others.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;

use crate::harness::{FORM, client_for, split};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// `tessera ARGS --data-dir DIR`: the store options belong to the command.
pub fn tessera(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).arg("--data-dir").arg(dir).output().unwrap()
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tessera(dir, args);
    assert!(out.status.success(), "tessera {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Registers an API the way the seed does, with the CLI on the store `store` names (nothing:
/// the data dir; `--database-url URL`: PostgreSQL): scope `dataEventRecords` for
/// `rs_dataEventRecordsApi`, each of `clients` (id, secret, `--token-format` if not the default)
/// allowed that scope, and the API itself (secret `api_secret`) allowed to introspect.
pub fn register_api(dir: &Path, store: &[&str], clients: &[(&str, &str, Option<&str>)]) {
    let run = |args: &[&str]| ok(dir, &[args, store].concat());
    run(&["scope", "add", "dataEventRecords", "--resource", "rs_dataEventRecordsApi"]);
    for &(id, secret, format) in clients {
        let mut args =
            vec!["client", "add", id, "--secret", secret, "--allow-weak-secret", "--scope", "dataEventRecords"];
        if let Some(format) = format {
            args.extend(["--token-format", format]);
        }
        run(&args);
    }
    let api = ["--secret", "api_secret", "--allow-weak-secret", "--permission", "introspection"];
    run(&[&["client", "add", "rs_dataEventRecordsApi"][..], &api].concat());
}

/// `tessera serve --data-dir DIR ARGS`, its stdout piped for the caller to read the listening
/// line from (and then to keep draining, or the server blocks on a full pipe).
pub fn serve_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(["serve", "--data-dir"]).arg(dir).args(args).stdout(Stdio::piped());
    command
}

pub struct Served {
    pub child: Child,
    pub addr: String,
    pub ca: Option<PathBuf>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &Path, extra: &[&str]) -> Served {
    serve_logging_to(dir, extra, None)
}

/// `serve`, its log (stderr) written to `log` when given.
pub fn serve_logging_to(dir: &Path, extra: &[&str], log: Option<&Path>) -> Served {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let args = [&["--listen", "127.0.0.1:0"][..], extra].concat();
    let mut child = serve_command(dir, &args).stderr(stderr).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut ca) = (None, None);
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("tessera listening on ") {
            addr = rest.split_whitespace().next().map(String::from);
        }
        if let Some(rest) = line.strip_prefix("development certificate authority: ") {
            ca = Some(PathBuf::from(rest));
        }
        if line.starts_with("  try: curl") {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, addr: addr.expect("listening line"), ca }
}

pub async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> (u16, serde_json::Value) {
    let r = http
        .post(format!("{base}/connect/token"))
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, FORM)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let (status, _, body) = split(r).await;
    (status, body)
}

pub async fn eventually(http: &reqwest::Client, base: &str, id: &str, secret: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = token(http, base, id, secret).await;
        if status == want {
            return;
        }
        assert!(Instant::now() < deadline, "still {status} {body}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_readme_walkthrough_cli_and_curl_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let served = serve(d, &[]);
    let ca = served.ca.clone().expect("dev CA path printed");
    assert!(ca.starts_with(d));
    let http = client_for(&ca);
    let base = format!("https://localhost:{}", served.addr.rsplit(':').next().unwrap());

    // Registered while the server runs: takes effect without a restart.
    assert!(
        ok(
            d,
            &[
                "scope",
                "add",
                "dataEventRecords",
                "--resource",
                "rs_dataEventRecordsApi",
                "--display-name",
                "dataEventRecords API",
                "--display-name-for",
                "fr-FR=API dataEventRecords"
            ]
        )
        .contains("added scope")
    );
    ok(d, &["client", "add", "CC", "--secret", "cc_secret", "--allow-weak-secret", "--scope", "dataEventRecords"]);
    eventually(&http, &base, "CC", "cc_secret", 200).await;

    // A generated secret is printed once and works.
    let out = ok(d, &["client", "add", "gen", "--scope", "dataEventRecords"]);
    let secret = out.lines().find_map(|l| l.strip_prefix("client_secret: ")).expect("secret printed").to_string();
    assert!(secret.len() >= 48);
    eventually(&http, &base, "gen", &secret, 200).await;

    // show/list never print secrets or hashes.
    let show = ok(d, &["client", "show", "gen"]);
    assert!(!show.contains(&secret) && !show.contains("sha256$"));
    let shown: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        shown["permissions"],
        serde_json::json!(["ept:token", "ept:revocation", "gt:client_credentials", "scp:dataEventRecords"])
    );
    assert!(ok(d, &["client", "list"]).contains("CC\tenabled"));
    let scope: serde_json::Value = serde_json::from_str(&ok(d, &["scope", "show", "dataEventRecords"])).unwrap();
    assert_eq!(scope["display_names"]["fr-FR"], "API dataEventRecords");
    assert!(ok(d, &["scope", "list"]).contains("resources=rs_dataEventRecordsApi"));
    assert!(ok(d, &["key", "list"]).contains("ES256\tactive"));

    // Disable, enable, rotate secrets — all live.
    ok(d, &["client", "disable", "CC"]);
    eventually(&http, &base, "CC", "cc_secret", 401).await;
    ok(d, &["client", "enable", "CC"]);
    eventually(&http, &base, "CC", "cc_secret", 200).await;
    let out = ok(d, &["client", "secret", "add", "CC"]);
    let new_secret = out.lines().find_map(|l| l.strip_prefix("client_secret: ")).unwrap().to_string();
    eventually(&http, &base, "CC", &new_secret, 200).await;
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "CC"])).unwrap();
    let old_id = show["secrets"][0]["id"].as_str().unwrap().to_string();
    ok(d, &["client", "secret", "remove", "CC", &old_id]);
    eventually(&http, &base, "CC", "cc_secret", 401).await;
    assert_eq!(token(&http, &base, "CC", &new_secret).await.0, 200);

    // Scopes and permissions change live too.
    ok(d, &["client", "update", "gen", "--remove-scope", "dataEventRecords"]);
    eventually(&http, &base, "gen", &secret, 400).await;
    let shown: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "gen"])).unwrap();
    assert_eq!(shown["permissions"], serde_json::json!(["ept:token", "ept:revocation", "gt:client_credentials"]));
    ok(d, &["client", "update", "gen", "--add-scope", "dataEventRecords", "--add-permission", "introspection"]);
    eventually(&http, &base, "gen", &secret, 200).await;
    let out = tessera(d, &["client", "update", "gen", "--add-scope", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope nope is not registered"));

    // Mistakes get clear messages and a non-zero exit.
    let out = tessera(d, &["client", "add", "x", "--scope", "unknown"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scope unknown is not registered"));
    let out = tessera(d, &["scope", "add", "dataEventRecords", "--resource", "r"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = tessera(d, &["client", "add", "y", "--permission", "ept:authorize"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid permission"));

    // Graceful shutdown on SIGTERM.
    let mut served = served;
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn plain_http_only_with_the_flag_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--http"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = err.next().unwrap().unwrap();
    assert!(first.contains("WARNING") && first.contains("plain HTTP"), "{first}");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = out
        .by_ref()
        .find_map(|l| {
            l.ok().and_then(|l| {
                l.strip_prefix("tessera listening on ").map(|r| r.split_whitespace().next().unwrap().to_string())
            })
        })
        .unwrap();
    let issuer = out.find_map(|l| l.ok().and_then(|l| l.strip_prefix("issuer: ").map(String::from))).unwrap();
    assert!(issuer.starts_with("http://"), "{issuer}");
    let doc: serde_json::Value =
        reqwest::get(format!("http://{addr}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());
    let _ = child.kill();
    let _ = child.wait();
}

/// `serve` runs its request threads under SCHED_BATCH (3) unless told `normal` (SCHED_OTHER,
/// 0); the reference-token writer stays under SCHED_OTHER either way.
#[cfg(target_os = "linux")]
#[test]
fn serve_runs_its_request_threads_as_batch_threads_unless_told_otherwise() {
    for (extra, want) in [(&[][..], 3), (&["--worker-scheduling", "normal"][..], 0)] {
        let dir = tempfile::tempdir().unwrap();
        let served = serve(dir.path(), extra);
        let workers = tessera_testkit::thread_policies(served.child.id(), "tokio-r");
        assert!(!workers.is_empty(), "no runtime thread found");
        assert!(workers.iter().all(|&p| p == want), "{extra:?}: {workers:?}");
        let writer = tessera_testkit::thread_policies(served.child.id(), "tessera-token-w");
        assert_eq!(writer, [0], "{extra:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path(), &["serve", "--worker-scheduling", "fifo"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--worker-scheduling"));
}

/// The binary's allocator commits arenas lazily (less resident memory, issue 17) unless the
/// environment says otherwise: mimalloc prints its options by name when verbose.
#[cfg(target_os = "linux")]
#[test]
fn allocator_commits_arenas_lazily() {
    let option = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(BIN)
            .arg("--version")
            .env("MIMALLOC_VERBOSE", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = err.lines().find(|l| l.starts_with("option 'arena_eager_commit':")).map(str::to_owned);
        line.unwrap_or_else(|| panic!("no arena_eager_commit in mimalloc's options: {err}"))
    };
    assert_eq!(option(&[]).trim(), "option 'arena_eager_commit': 0");
    assert_eq!(option(&[("MIMALLOC_ARENA_EAGER_COMMIT", "2")]).trim(), "option 'arena_eager_commit': 2");
}

#[test]
fn serve_with_real_certificate_files_and_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    // Owner-only, so it is the content that is refused (see cli_safety for the permissions).
    std::fs::set_permissions(dir.path().join("bad.pem"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(dir.path().join("bad.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("bad.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tessera_demo_runs_the_whole_scenario_and_exits_0() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == "Greeting: Hello GreeterClient"), "{stdout}");
    assert!(stdout.contains("(reference token, introspected)"), "{stdout}");
    assert!(stdout.contains("(CC_private_key_jwt: private_key_jwt, assertion signed by key"), "{stdout}");
    assert!(stdout.contains("(CC_mtls: self_signed_tls_client_auth, certificate x5t#S256 "), "{stdout}");
    // RFC 9449: the DPoP client's token works with its key, and stolen, is refused without it.
    assert!(stdout.lines().any(|l| l.starts_with("CC_dpop: token_type DPoP, cnf.jkt ")), "{stdout}");
    assert!(stdout.contains("Greeting: Hello GreeterClient (CC_dpop: Authorization: DPoP,"), "{stdout}");
    assert!(stdout.contains("REST API /weatherforecast: 200 OK for CC_dpop"), "{stdout}");
    let refusals = [
        "replayed as Bearer: the Greeter refuses it (Unauthenticated: invalid token:",
        "replayed as Bearer: the REST API refuses it (401, WWW-Authenticate: Bearer realm=\"api1\", error=\"invalid_token\"",
        "the Greeter refuses it (Unauthenticated: invalid DPoP proof: the proof's key is not the key the token is bound to)",
        "the REST API refuses it (401, WWW-Authenticate: DPoP realm=\"api1\", error=\"invalid_dpop_proof\"",
    ];
    for refusal in refusals {
        assert!(
            stdout.lines().any(|l| l.starts_with("stolen DPoP-bound token") && l.contains(refusal)),
            "{refusal}: {stdout}"
        );
    }
    // Issue 15: a worker with no secret, through the demo cluster's projected token.
    assert!(
        stdout.lines().any(|l| l.starts_with("federated worker: system:serviceaccount:demo:worker")
            && l.contains("acts as federated-worker: /weatherforecast 200 OK")),
        "{stdout}"
    );
    assert!(stdout.contains("demo finished"), "{stdout}");
}

/// Issue 13: how `tessera demo client` logs in, seen from which error comes first (the login is
/// settled before the CA is read): the seed's key client uses the sample key, not a secret it
/// does not have; `--private-key` is read as given; `--kid` names a key given.
#[test]
fn tessera_demo_client_logs_in_with_the_sample_key_or_the_key_given() {
    let client = |args: &[&str]| {
        let out =
            Command::new(BIN).args(["demo", "client", "--ca", "/nonexistent/ca.pem"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = client(&["--client-id", "nobody"]);
    assert!(err.contains("examples/seed.toml has no secret for nobody"), "{err}");
    let err = client(&["--client-id", "CC_private_key_jwt"]);
    assert!(err.contains("/nonexistent/ca.pem") && !err.contains("no secret"), "{err}");
    let err = client(&["--client-id", "CC_private_key_jwt", "--private-key", "/nonexistent/key.pem"]);
    assert!(err.contains("/nonexistent/key.pem"), "{err}");
    let err = client(&["--kid", "k1"]);
    assert!(err.contains("--private-key"), "--kid alone is refused: {err}");
}

/// RFC 8705: `tessera demo client` logs the seed's mTLS client in with the sample certificate,
/// not a secret it does not have; `--client-cert` is read as given and must hold a certificate
/// and its key; it excludes `--private-key`.
#[test]
fn tessera_demo_client_logs_in_with_the_sample_certificate_or_the_one_given() {
    let client = |args: &[&str]| {
        let out =
            Command::new(BIN).args(["demo", "client", "--ca", "/nonexistent/ca.pem"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = client(&["--client-id", "CC_mtls"]);
    assert!(err.contains("/nonexistent/ca.pem") && !err.contains("no secret"), "{err}");
    let err = client(&["--client-id", "CC_mtls", "--client-cert", "/nonexistent/cert.pem"]);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    // A private key alone is no client identity.
    let key_only = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/keys/cc-private-key-jwt.pem");
    let err = client(&["--client-id", "CC_mtls", "--client-cert", key_only]);
    assert!(err.contains("no certificate"), "{err}");
    let err = client(&["--client-cert", "/nonexistent/cert.pem", "--private-key", "/nonexistent/key.pem"]);
    assert!(err.contains("--private-key") && err.contains("cannot be used with"), "{err}");
}
