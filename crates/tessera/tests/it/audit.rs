//! Issue 16, the audit trail over real sockets and the real CLI: every registry change with
//! its actor (the CLI's user, the seed file), and the running server's security events
//! (failed authentications, lockouts, revocations), bounded per second.

use std::process::Command;

use serde_json::Value;
use tessera_server::FileConfig;
use tessera_store::{AuditAction, AuditQuery};
use tessera_testkit::Authority as _;

use crate::harness::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Runs the CLI on `dir` as login `user`.
fn as_user(dir: &std::path::Path, user: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("USER", user)
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert!(out.status.success(), "tessera {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn entries(dir: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let out = as_user(dir, "auditor", &[&["audit", "list", "--json"], extra].concat());
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
}

#[test]
fn issue16_every_registry_change_from_the_cli_is_audited_with_its_user_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    as_user(d, "setup", &["init"]);
    as_user(d, "alice", &["scope", "add", "orders", "--resource", "orders-api"]);
    let out = as_user(d, "alice", &["client", "add", "shop", "--scope", "orders"]);
    let secret = out.split_whitespace().find(|w| w.starts_with("tsec_")).expect("a generated secret").to_owned();
    as_user(d, "bob", &["client", "update", "shop", "--lifetime", "600"]);
    as_user(d, "bob", &["client", "disable", "shop"]);
    as_user(d, "carol", &["scope", "remove", "orders"]);

    let all = entries(d, &[]);
    let by = |action: &str| all.iter().filter(|e| e["action"] == action).cloned().collect::<Vec<_>>();
    let added = by("client.added");
    assert_eq!(added.len(), 1, "{all:#?}");
    assert_eq!((added[0]["actor"].as_str(), added[0]["target"].as_str()), (Some("cli:alice"), Some("shop")));
    assert_eq!(added[0]["detail"]["permissions"].as_array().unwrap().len() > 0, true);
    let updated = &by("client.updated")[0];
    assert_eq!(updated["actor"], "cli:bob");
    assert_eq!(
        (
            updated["detail"]["before"]["access_token_lifetime"].as_i64(),
            updated["detail"]["after"]["access_token_lifetime"].as_i64()
        ),
        (Some(3600), Some(600))
    );
    assert_eq!(by("client.disabled")[0]["actor"], "cli:bob");
    assert_eq!(by("scope.removed")[0]["actor"], "cli:carol");
    // The keys `init` generated are the server's own changes, made here by the CLI's user.
    assert!(by("key.added").iter().all(|e| e["actor"] == "cli:setup"), "{all:#?}");
    // Never a secret, nor its hash.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&secret) && !text.contains("argon2") && !text.contains("$"), "{text}");
    // Filters: by client, by action, by time.
    assert!(entries(d, &["--client", "shop"]).iter().all(|e| e["target"] == "shop"));
    assert_eq!(entries(d, &["--action", "scope.added"]).len(), 1);
    assert!(entries(d, &["--since", "1h"]).len() >= 5);
    assert_eq!(entries(d, &["--since", "4000000000"]).len(), 0);
    let bad = Command::new(BIN).args(["audit", "list", "--action", "nonsense", "--data-dir"]).arg(d).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("client.added"));
    // Lines: seq, time, actor, action, target, detail.
    let lines = as_user(d, "auditor", &["audit", "list", "--client", "shop"]);
    assert!(lines.lines().any(|l| l.contains("\tcli:alice\tclient.added\tshop\t")), "{lines}");
}

#[tokio::test]
async fn issue16_failed_authentications_lockouts_and_revocations_are_audited_with_the_seed_as_actor() {
    let mut file = FileConfig::parse(
        r#"
[[scopes]]
name = "orders"
resources = ["orders-api"]

[[clients]]
client_id = "shop"
secret = "shop_secret_0123456789abcdef"
scopes = ["orders"]
"#,
        "seed",
    )
    .unwrap();
    file.limits.failed_auth_free_attempts = Some(2);
    // The manual clock: on the system clock a second boundary between the third failure and
    // the fourth attempt ends the one-second backoff before it is tested.
    let clock = tessera_types::clock::ManualClock::new(tessera_types::UnixTime(1_800_000_000));
    let s = TestServer::builder().algs(&["ES256"]).clock(std::sync::Arc::new(clock)).file(file).start().await;
    // A wrong secret three times: three failures, the third starts the lockout.
    for _ in 0..3 {
        let r = s.token_basic("shop", "wrong_secret", "grant_type=client_credentials").await;
        assert_eq!(r.0, 401, "{}", r.2);
    }
    // Refused while backing off: not a verification, not audited again.
    assert_eq!(s.token_basic("shop", "wrong_secret", "grant_type=client_credentials").await.0, 429);
    s.running().flush_audit().await;
    let q = |action| AuditQuery { action: Some(action), ..AuditQuery::default() };
    let failed = s.store.list_audit(&q(AuditAction::AuthFailed)).await.unwrap();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    assert_eq!(failed[0].target, "shop");
    assert_eq!(failed[0].detail["method"], "client_secret_basic");
    assert_eq!(failed[0].detail["error"], "invalid_client");
    assert!(failed[0].actor.starts_with("peer:127.0.0.1"), "{}", failed[0].actor);
    let lockouts = s.store.list_audit(&q(AuditAction::Lockout)).await.unwrap();
    assert_eq!(lockouts.len(), 2, "the client id and the address: {lockouts:#?}");
    // The seed file's registrations are the seed's.
    let seeded = s.store.list_audit(&q(AuditAction::ClientAdded)).await.unwrap();
    assert_eq!((seeded[0].actor.as_str(), seeded[0].target.as_str()), ("seed", "shop"));
    assert!(!seeded[0].detail.to_string().contains("shop_secret"));
}

#[tokio::test]
async fn issue16_a_revocation_is_audited_and_a_flood_of_failures_is_bounded_per_second() {
    let mut file = FileConfig::default();
    file.limits.failed_auth_free_attempts = Some(10_000);
    file.limits.audit_max_events_per_second = Some(5);
    // One second of the manual clock for the whole test.
    let clock = tessera_types::clock::ManualClock::new(tessera_types::UnixTime(1_800_000_000));
    let s = TestServer::builder().clock(std::sync::Arc::new(clock)).file(file).start().await;
    s.seed_scenario().await;
    let token = s.token("CC", "cc_secret").await;
    let r = s.post_form("/connect/revoke", "CC", "cc_secret", &format!("token={token}")).await;
    assert_eq!(r.0, 200);
    // 20 failures within one second of the manual clock: 4 more kept, the rest counted.
    for _ in 0..20 {
        assert_eq!(s.token_basic("CC", "wrong", "grant_type=client_credentials").await.0, 401);
    }
    s.running().flush_audit().await;
    let all = s.store.list_audit(&AuditQuery::default()).await.unwrap();
    let revoked: Vec<_> = all.iter().filter(|e| e.action == AuditAction::TokenRevoked).collect();
    assert_eq!(revoked.len(), 1, "{all:#?}");
    assert_eq!((revoked[0].actor.as_str(), revoked[0].target.as_str()), ("client:CC", "CC"));
    assert!(!revoked[0].detail.to_string().contains(&token));
    let failed = all.iter().filter(|e| e.action == AuditAction::AuthFailed).count();
    let suppressed: u64 =
        all.iter().filter(|e| e.action == AuditAction::Suppressed).map(|e| e.detail["count"].as_u64().unwrap()).sum();
    assert_eq!((failed, suppressed), (4, 16), "{all:#?}");
}
