//! Issue 16, CLI polish: shell completions and the man page come from the same definition
//! clap parses, so every command is in them.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn issue16_completions_for_three_shells_and_a_man_page_name_every_command() {
    let commands = ["serve", "init", "scope", "client", "key", "trust", "token", "audit", "apply", "export", "demo"];
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for c in commands {
            assert!(script.contains(c), "{shell} completion lacks {c}");
        }
    }
    // The bash script is valid bash.
    let bash = run(&["completions", "bash"]);
    let checked = Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(bash.as_bytes())?;
            child.wait()
        })
        .unwrap();
    assert!(checked.success(), "bash -n refused the completion script");
    let man = run(&["man"]);
    assert!(man.starts_with(".ie") && man.contains(".TH tessera 1"), "{}", &man[..200]);
    for c in commands {
        assert!(man.contains(&format!(".TH tessera-{c} ")), "the man page lacks tessera-{c}");
    }
    assert!(!Command::new(BIN).args(["completions", "powershell"]).output().unwrap().status.success());
}

#[test]
fn issue16_json_output_for_lists_and_additions_and_defaults_in_help() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).arg("--data-dir").arg(d).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let text = run(&[args, &["--json"]].concat());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    };
    run(&["init"]);
    assert_eq!(json(&["scope", "add", "orders", "--resource", "orders-api"])["name"], "orders");
    let added = json(&["client", "add", "shop", "--scope", "orders"]);
    assert_eq!(added["client"]["client_id"], "shop");
    assert!(added["client_secret"].as_str().unwrap().starts_with("tsec_"), "the generated secret, once");
    let clients = json(&["client", "list"]);
    assert_eq!(clients.as_array().unwrap().len(), 1);
    assert!(clients[0].get("client_secret").is_none() && !clients.to_string().contains("tsec_"));
    assert!(json(&["scope", "list"]).as_array().unwrap().iter().any(|s| s["name"] == "orders"));
    assert_eq!(json(&["key", "list"]).as_array().unwrap()[0]["phase"], "active");
    assert!(json(&["trust", "list"]).as_array().unwrap().is_empty());
    assert!(!json(&["audit", "list"]).as_array().unwrap().is_empty());
    let help = run(&["serve", "--help"]);
    assert!(help.contains("127.0.0.1:8443") && help.contains("./tessera-data"), "{help}");
}
