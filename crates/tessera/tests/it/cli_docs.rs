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
