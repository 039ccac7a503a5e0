//! Issue 10, parts 7 and 8: the shared store cannot be wrecked from the CLI, and secrets stay
//! out of argv, logs and help. The real binary, in real processes.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tessera_server::clock::{Clock as _, SystemClock, SystemRandom};
use tessera_server::keys::{self, Kek};
use tessera_types::SigningAlg;

use crate::cli::{eventually, ok, serve, tessera, token};
use crate::harness::client_for;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", String::from_utf8_lossy(&out.stdout));
    stderr(&out)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A key-encryption key file of our own (0600), as an operator's copy of the wrong one.
fn other_kek(path: &Path) {
    Kek::load_or_create(path, &SystemRandom::default()).unwrap();
}

/// `tessera ARGS --data-dir DIR` with `input` on standard input.
fn with_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn base_of(addr: &str) -> String {
    format!("https://localhost:{}", addr.rsplit(':').next().unwrap())
}

#[test]
fn issue10_init_creates_the_store_and_key_encryption_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let out = ok(&d, &["init"]);
    assert!(out.contains("initialised a Tessera store"), "{out}");
    assert_eq!(mode(&d.join("key-encryption.key")), 0o600);
    assert_eq!(mode(&d.join("tessera.db")), 0o600);
    assert_eq!(mode(&d), 0o700);
    let kek_before = std::fs::read(d.join("key-encryption.key")).unwrap();
    let keys = ok(&d, &["key", "list"]);
    assert!(keys.contains("ES256\tactive"), "{keys}");
    // Again: nothing changes.
    assert!(ok(&d, &["init"]).contains("already exists"));
    assert_eq!(std::fs::read(d.join("key-encryption.key")).unwrap(), kek_before);
    assert_eq!(ok(&d, &["key", "list"]), keys);
    // And the CLI works on it.
    ok(&d, &["scope", "add", "s", "--resource", "r"]);
}

#[test]
fn issue10_key_encryption_key_mismatch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let keys_before = ok(d, &["key", "list"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let wrong = elsewhere.path().join("wrong.key");
    other_kek(&wrong);
    let wrong_text = std::fs::read(&wrong).unwrap();
    let files_before: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();

    let err = fails(tessera(d, &["key", "rotate", "--key-encryption-key-file", wrong.to_str().unwrap()]));
    assert!(err.contains(wrong.to_str().unwrap()) && err.contains("is not the one"), "{err}");
    assert_eq!(ok(d, &["key", "list"]), keys_before, "no key sealed with the wrong KEK");

    // serve with the wrong KEK: refused before seeding anything from its config file.
    let config = elsewhere.path().join("seed.toml");
    // A secret above the strength floor: a weak one is refused before the key-encryption key
    // is even looked at (see issue11_a_bad_seed_is_refused_before_the_store_is_opened).
    std::fs::write(&config, "[[clients]]\nclient_id = \"seeded\"\nsecret = \"seeded-Secret-4f9a2c7e1b3d\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(d)
        .arg("--config")
        .arg(&config)
        .arg("--key-encryption-key-file")
        .arg(&wrong)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains(wrong.to_str().unwrap()) && err.contains("is not the one"), "{err}");
    assert!(!ok(d, &["client", "list"]).contains("seeded"), "nothing seeded");
    assert_eq!(ok(d, &["key", "list"]), keys_before);
    assert_eq!(std::fs::read(&wrong).unwrap(), wrong_text, "the wrong KEK file is left as it was");
    let files_after: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    for f in &files_after {
        assert!(
            files_before.contains(f) || f == "tessera.lock" || f.to_str().unwrap().starts_with("tessera.db"),
            "new file {f:?}"
        );
    }
    // The right one still works.
    assert!(ok(d, &["key", "rotate", "--now"]).contains("new active ES256 key"));
}

#[tokio::test]
async fn issue10_a_store_from_before_the_check_records_it_on_first_serve() {
    // A database with a key and no recorded check value, as before migration 0004.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = tessera_store::Store::open_embedded(d).await.unwrap();
    let rng = SystemRandom::default();
    let kek = Kek::load_or_create(&d.join("key-encryption.key"), &rng).unwrap();
    keys::rotate(&store, &kek, SigningAlg::ES256, 3600, &rng, SystemClock.now()).await.unwrap();
    assert_eq!(store.kek_check().await.unwrap(), None);
    let keys_before = ok(d, &["key", "list"]);

    // Another KEK does not open the existing key: refused, nothing recorded or written.
    let wrong = dir.path().join("wrong.key");
    other_kek(&wrong);
    let err = fails(tessera(d, &["key", "rotate", "--key-encryption-key-file", wrong.to_str().unwrap()]));
    assert!(err.contains("does not open") && err.contains(wrong.to_str().unwrap()), "{err}");
    assert_eq!(store.kek_check().await.unwrap(), None);
    assert_eq!(ok(d, &["key", "list"]), keys_before);

    // serve with the right one records it; from then on the check value decides.
    let served = serve(d, &[]);
    assert_eq!(store.kek_check().await.unwrap().as_deref(), Some(kek.check()));
    drop(served);
    let err = fails(tessera(d, &["key", "rotate", "--key-encryption-key-file", wrong.to_str().unwrap()]));
    assert!(err.contains("is not the one"), "{err}");
    store.close().await;
}

#[test]
fn issue10_a_missing_key_encryption_key_is_refused_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let keys_before = ok(d, &["key", "list"]);
    let missing = dir.path().join("elsewhere/kek");
    let err = fails(tessera(d, &["key", "rotate", "--key-encryption-key-file", missing.to_str().unwrap()]));
    assert!(err.contains(missing.to_str().unwrap()) && err.contains("never creates"), "{err}");
    // serve may not create one either once the store has keys.
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(d)
        .arg("--key-encryption-key-file")
        .arg(&missing)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains(missing.to_str().unwrap()) && err.contains("already has signing keys"), "{err}");
    assert!(!missing.exists() && !missing.parent().unwrap().exists(), "no KEK file created");
    assert_eq!(ok(d, &["key", "list"]), keys_before);
}

#[test]
fn issue10_a_mistyped_data_dir_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("tesera-data");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "imported-secret-1\n").unwrap();
    for args in [
        vec!["client", "add", "CC", "--secret-file", secret.to_str().unwrap()],
        vec!["scope", "add", "s", "--resource", "r"],
        vec!["scope", "list"],
        vec!["key", "rotate"],
        vec!["key", "list"],
    ] {
        let err = fails(tessera(&typo, &args));
        assert!(err.contains(typo.to_str().unwrap()) && err.contains("tessera init"), "{args:?}: {err}");
    }
    assert!(!typo.exists(), "no data dir created");
}

#[test]
fn issue10_a_second_serve_on_one_data_dir_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut first = serve(d, &[]);
    let pid = first.child.id();
    let out =
        Command::new(BIN).args(["serve", "--data-dir"]).arg(d).args(["--listen", "127.0.0.1:0"]).output().unwrap();
    let err = fails(out);
    assert!(err.contains(&format!("pid {pid}")) && err.contains("tessera.lock"), "{err}");
    // The CLI still works beside the running server.
    ok(d, &["scope", "list"]);
    // SIGKILL releases the lock: a new server starts.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = serve(d, &[]);
    assert_ne!(second.child.id(), pid);
}

#[test]
fn issue10_key_files_readable_by_group_or_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let kek = d.join("key-encryption.key");
    chmod(&kek, 0o644);
    let want = format!("chmod 600 {}", kek.display());
    assert!(fails(tessera(d, &["key", "rotate"])).contains(&want));
    let out =
        Command::new(BIN).args(["serve", "--data-dir"]).arg(d).args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(fails(out).contains(&want));
    chmod(&kek, 0o640);
    assert!(fails(tessera(d, &["key", "rotate"])).contains(&want));
    chmod(&kek, 0o600);

    // An operator's TLS key (here a copy of the development one) at 0644, then 0600.
    drop(serve(d, &[]));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(d.join("tls/dev-cert.pem"), &cert).unwrap();
    std::fs::copy(d.join("tls/dev-key.pem"), &key).unwrap();
    chmod(&key, 0o644);
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let out = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(d)
        .args(["--listen", "127.0.0.1:0"])
        .args(tls)
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains(&format!("chmod 600 {}", key.display())), "{err}");
    chmod(&key, 0o600);
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(d)
        .args(["--listen", "127.0.0.1:0"])
        .args(tls)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.any(|l| l.is_ok_and(|l| l.starts_with("tessera listening on")));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started, "serves with the operator's 0600 key");
}

#[tokio::test]
async fn issue10_secret_file_and_standard_input_import_secrets_that_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let served = serve(d, &[]);
    let http = client_for(served.ca.as_ref().unwrap());
    let base = base_of(&served.addr);
    ok(d, &["scope", "add", "dataEventRecords", "--resource", "rs_dataEventRecordsApi"]);

    let file = dir.path().join("a.secret");
    std::fs::write(&file, "secret-from-a-file-0123456789\n").unwrap();
    let out = ok(d, &["client", "add", "A", "--scope", "dataEventRecords", "--secret-file", file.to_str().unwrap()]);
    assert!(!out.contains("client_secret:"), "imported, not generated: {out}");
    let out = with_stdin(
        d,
        &["client", "add", "B", "--scope", "dataEventRecords", "--secret-file", "-"],
        "secret-from-stdin-0123456789\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out =
        with_stdin(d, &["client", "secret", "add", "A", "--secret-file", "-"], "second-secret-of-a-0123456789\r\n");
    assert!(out.status.success(), "{}", stderr(&out));

    eventually(&http, &base, "A", "secret-from-a-file-0123456789", 200).await;
    eventually(&http, &base, "B", "secret-from-stdin-0123456789", 200).await;
    eventually(&http, &base, "A", "second-secret-of-a-0123456789", 200).await;
    assert_eq!(token(&http, &base, "B", "secret-from-stdin-0123456789\n").await.0, 401, "newline stripped");

    // Mistakes are refused and change nothing.
    std::fs::write(&file, "line one\nline two\n").unwrap();
    assert!(fails(tessera(d, &["client", "add", "C", "--secret-file", file.to_str().unwrap()])).contains("one line"));
    let both = tessera(d, &["client", "add", "C", "--secret", "x-secret-value", "--secret-file", "-"]);
    assert!(fails(both).contains("exclude each other"));
    assert!(fails(with_stdin(d, &["client", "add", "C", "--secret-file", "-"], "\n")).contains("empty"));
    assert!(!ok(d, &["client", "list"]).contains("C\t"));
    // Without any secret option a secret is still generated and shown once.
    assert!(ok(d, &["client", "add", "G"]).contains("client_secret: "));
}

/// `--secret-file -` on a terminal prompts twice without echo (a pseudo-terminal from
/// util-linux `script`; skipped where it is missing).
#[test]
fn issue10_secret_prompt_on_a_terminal_does_not_echo() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED issue10_secret_prompt_on_a_terminal_does_not_echo: no `script`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    let cmd = format!("{BIN} client add T --secret-file - --data-dir {}", d.display());
    let mut child = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u8>();
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while stdout.read(&mut b).is_ok_and(|n| n == 1) {
            if tx.send(b[0]).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => seen.push(b as char),
                Err(_) => panic!("no {needle:?} in {seen:?}"),
            }
        }
    };
    wait_for("(not echoed): ", &mut seen);
    // Typed only once the prompt is up, so echo is already off.
    std::thread::sleep(Duration::from_millis(200));
    stdin.write_all(b"typed-at-a-terminal-0123456789\n").unwrap();
    wait_for("again: ", &mut seen);
    std::thread::sleep(Duration::from_millis(200));
    stdin.write_all(b"typed-at-a-terminal-0123456789\n").unwrap();
    wait_for("added client T", &mut seen);
    drop(stdin);
    let _ = child.wait();
    assert!(!seen.contains("typed-at-a-terminal"), "echoed: {seen:?}");
    let show = ok(d, &["client", "show", "T"]);
    assert!(show.contains("imported (argon2id)"), "{show}");
}

#[tokio::test]
async fn issue10_generated_secrets_of_seeded_clients_go_to_a_0600_file_not_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = dir.path().join("seed.toml");
    std::fs::write(
        &config,
        "[[scopes]]\nname = \"s\"\nresources = [\"r\"]\n[[clients]]\nclient_id = \"seeded\"\nscopes = [\"s\"]\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(d)
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("  try: curl");
        stdout.push(line);
        if done {
            break;
        }
    }
    let served = crate::cli::Served {
        addr: stdout
            .iter()
            .find_map(|l| {
                l.strip_prefix("tessera listening on ").map(|r| r.split_whitespace().next().unwrap().to_string())
            })
            .unwrap(),
        ca: Some(d.join("tls/dev-ca.pem")),
        child,
    };
    let path = d.join("generated-secrets.txt");
    assert!(stdout.iter().any(|l| l.contains(path.to_str().unwrap())), "{stdout:?}");
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let secret = text.lines().find_map(|l| l.strip_prefix("seeded\t")).expect("seeded client's secret").to_string();
    assert!(secret.len() >= 40);
    assert!(!stdout.iter().any(|l| l.contains(&secret)), "secret on stdout: {stdout:?}");
    let http = client_for(served.ca.as_ref().unwrap());
    eventually(&http, &base_of(&served.addr), "seeded", &secret, 200).await;
    drop(served);
}

/// Every command path, found by walking the `Commands:` sections of `--help`.
fn every_command() -> Vec<Vec<String>> {
    let mut found = vec![vec![]];
    let mut i = 0;
    while i < found.len() {
        let path = found[i].clone();
        let out = Command::new(BIN).args(&path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let commands = help.lines().skip_while(|l| *l != "Commands:").skip(1).take_while(|l| !l.is_empty());
        // Command lines are indented by two spaces; wrapped descriptions by more.
        let names = commands.filter(|l| !l.starts_with("   ")).filter_map(|l| l.split_whitespace().next());
        for name in names.filter(|n| *n != "help") {
            found.push(path.iter().cloned().chain([name.to_string()]).collect());
        }
        i += 1;
    }
    found
}

#[test]
fn issue10_help_shows_no_secret_from_the_environment() {
    let value = "env-secret-value-that-must-not-show";
    let secrets = [
        ("TESSERA_DEMO_API_SECRET", value.to_string()),
        ("TESSERA_DEMO_CLIENT_SECRET", value.to_string()),
        ("TESSERA_IMPORT_CLIENT_SECRET", value.to_string()),
        ("TESSERA_DATABASE_URL", format!("postgres://u:{value}@db/t")),
    ];
    let commands = every_command();
    assert!(commands.len() > 20, "{commands:?}");
    for path in &commands {
        let out =
            Command::new(BIN).envs(secrets.iter().map(|(k, v)| (k, v))).args(path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{path:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(!help.contains(value), "{path:?} shows a secret from the environment: {help}");
    }
    // Where each is documented.
    for (var, args) in [
        ("TESSERA_DEMO_API_SECRET", vec!["demo", "greeter"]),
        ("TESSERA_DEMO_CLIENT_SECRET", vec!["demo", "client"]),
        ("TESSERA_DEMO_CLIENT_SECRET", vec!["demo", "worker"]),
        ("TESSERA_IMPORT_CLIENT_SECRET", vec!["client", "add"]),
        ("TESSERA_IMPORT_CLIENT_SECRET", vec!["client", "secret", "add"]),
        ("TESSERA_DATABASE_URL", vec!["serve"]),
        ("TESSERA_DATABASE_URL", vec!["client", "list"]),
    ] {
        let out = Command::new(BIN).args(&args).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains(var), "{args:?} documents {var}: {help}");
    }
    let help = String::from_utf8_lossy(&Command::new(BIN).args(["client", "add", "--help"]).output().unwrap().stdout)
        .into_owned();
    assert!(help.contains("--secret-file") && help.contains("visible to other users in `ps`"), "{help}");
}

/// Issue 11: the store options belong to the commands that open the store; the demo's parts
/// take only what they use.
#[test]
fn issue11_store_options_only_on_the_commands_that_use_the_store() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let store_options = ["--data-dir", "--config", "--database-url", "--key-encryption-key-file"];
    for args in [&["demo"][..], &["demo", "greeter"], &["demo", "client"], &["demo", "api"], &["demo", "worker"], &[]] {
        let text = help(args);
        for option in store_options {
            assert!(!text.contains(option), "{args:?} offers {option}: {text}");
        }
    }
    for args in [&["serve"][..], &["init"], &["scope", "add"], &["client", "secret", "add"], &["key", "list"]] {
        let text = help(args);
        for option in store_options {
            assert!(text.contains(option), "{args:?} lacks {option}: {text}");
        }
    }
    // A configuration file named in the environment is not read by a command that has no use
    // for it: the demo client fails on its own missing CA, not on the configuration.
    let out = Command::new(BIN)
        .env("TESSERA_CONFIG", "/nonexistent/tessera.toml")
        .args(["demo", "client", "--ca", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(err.contains("/nonexistent/ca.pem") && !err.contains("tessera.toml"), "{err}");
}

/// Issue 11: the seed file's scopes and clients are checked with the rest of the settings, so
/// a bad one stops `serve` before any store or key is created.
#[test]
fn issue11_a_bad_seed_is_refused_before_the_store_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    for (seed, why) in [
        ("[[clients]]\nclient_id = \"weak\"\nsecret = \"short\"\n", "too weak"),
        ("[[clients]]\nclient_id = \"c\"\naccess_token_lifetime = 0\n", "lifetime"),
        ("[[clients]]\nclient_id = \"c\"\nsigning_alg = \"HS256\"\n", "signing algorithm"),
        ("[[clients]]\nclient_id = \"c\"\npermissions = [\"ept:authorize\"]\n", "permission"),
        ("[[scopes]]\nname = \"s\"\ndisplay_names = { \"fr FR\" = \"x\" }\n", "culture"),
    ] {
        let config = dir.path().join("seed.toml");
        std::fs::write(&config, seed).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(&d)
            .arg("--config")
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = fails(out);
        assert!(err.contains(why), "{seed}: {err}");
        assert!(!d.exists(), "{seed}: the data dir was created");
    }
}

#[test]
fn issue10_a_database_password_in_argv_warns_and_the_file_option_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nothing listens on port 1: the commands fail, after the start-up checks.
    let url = "postgres://tessera:pw-in-argv@127.0.0.1:1/t";
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    let run = |args: Vec<&str>, env: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data-dir").arg(d).env("RUST_LOG", "warn").env_remove("TESSERA_DATABASE_URL");
        if let Some(e) = env {
            c.env("TESSERA_DATABASE_URL", e);
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let argv = run(vec!["scope", "--database-url", url, "list"], None);
    let after = run(vec!["scope", "list", "--database-url", url], None);
    let file = run(vec!["scope", "list", "--database-url-file", url_file.to_str().unwrap()], None);
    let env = run(vec!["scope", "list"], Some(url));
    for (child, warns) in [(argv, true), (after, true), (file, false), (env, false)] {
        let out = child.wait_with_output().unwrap();
        let err = fails(out);
        assert_eq!(err.contains("--database-url-file, TESSERA_DATABASE_URL, PGPASSWORD"), warns, "{err}");
        assert!(!err.contains("pw-in-argv"), "password in a message: {err}");
    }
    let both = tessera(d, &["scope", "list", "--database-url", url, "--database-url-file", url_file.to_str().unwrap()]);
    assert!(fails(both).contains("exclude each other"));
}

#[test]
fn issue10_debug_of_admin_values_redacts_secrets() {
    let new = tessera_server::admin::ClientSpec {
        secret: Some(tessera_types::ClientSecret::new("debug-must-not-show-this").unwrap()),
        ..tessera_server::admin::ClientSpec::new(tessera_types::ClientId::new("CC").unwrap())
    };
    let text = format!("{new:?}");
    assert!(!text.contains("debug-must-not-show-this") && text.contains("[redacted]") && text.contains("CC"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "database_url = \"postgres://u:pw-in-file@db/t\"\n[[clients]]\nclient_id = \"x\"\nsecret = \"s-in-file\"\n",
    )
    .unwrap();
    let file = tessera_server::FileConfig::load(&path).unwrap();
    let text = format!("{file:?}");
    assert!(!text.contains("pw-in-file") && !text.contains("s-in-file") && text.contains("db/t"), "{text}");
}
