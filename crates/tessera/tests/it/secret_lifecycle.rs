//! Issue 16, secrets lifecycle over real sockets: an expiry per secret (refused after it,
//! audited), and the last use of each secret recorded in batches, not per request.

use std::sync::Arc;

use tessera_server::clock::SystemRandom;
use tessera_store::{AuditAction, AuditQuery};
use tessera_testkit::Authority as _;
use tessera_types::clock::ManualClock;
use tessera_types::{ClientId, ClientSecret, UnixTime};

use crate::cli::ok;
use crate::harness::TestServer;

#[tokio::test]
async fn issue16_an_expired_secret_is_refused_and_audited_while_the_new_one_works() {
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let file = tessera_server::FileConfig { metrics_listen: Some("127.0.0.1:0".into()), ..Default::default() };
    let s = TestServer::builder().clock(Arc::new(clock.clone())).file(file).start().await;
    s.seed_scenario().await;
    let cc = ClientId::new("CC").unwrap();
    // Rotation: a new secret for a day, the old one told to expire in an hour.
    let new = ClientSecret::new("cc_rotated_secret_0123456789abcdef").unwrap();
    let (_, generated) = tessera_server::admin::add_secret(
        &s.store,
        &cc,
        Some(new.clone()),
        false,
        Some(86_400),
        &SystemRandom::default(),
        s.now(),
    )
    .await
    .unwrap();
    assert!(generated.is_none(), "imported");
    let secrets = s.store.get_client(&cc).await.unwrap().unwrap().secrets;
    let old_id = secrets.iter().find(|x| x.expires_at.is_none()).unwrap().id.clone();
    assert!(s.store.set_secret_expiry(&cc, &old_id, Some(s.now().plus(3600))).await.unwrap());
    assert!(!s.store.set_secret_expiry(&cc, "sec_absent", None).await.unwrap());
    s.sync().await;
    let grant = "grant_type=client_credentials";
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200, "before its expiry");
    assert_eq!(s.token_basic("CC", new.expose(), grant).await.0, 200);
    clock.advance(3600);
    let refused = s.token_basic("CC", "cc_secret", grant).await;
    tessera_testkit::assert_oauth_error(&refused, 401, "invalid_client");
    assert_eq!(s.token_basic("CC", new.expose(), grant).await.0, 200, "the new secret still works");
    clock.advance(86_400);
    tessera_testkit::assert_oauth_error(&s.token_basic("CC", new.expose(), grant).await, 401, "invalid_client");
    s.running().flush_audit().await;
    let expired = s
        .store
        .list_audit(&AuditQuery { action: Some(AuditAction::SecretExpired), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(expired.len(), 2, "{expired:#?}");
    assert_eq!((expired[0].target.as_str(), expired[0].detail["secret_id"].as_str()), ("CC", Some(old_id.as_str())));
    let set = s
        .store
        .list_audit(&AuditQuery { action: Some(AuditAction::SecretExpirySet), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(set.len(), 1);
    // And a metric.
    let at = s.running().metrics_addr.unwrap();
    let text = reqwest::get(format!("http://{at}/metrics")).await.unwrap().text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("tessera_client_auth_failures_total{") && l.contains("reason=\"expired_secret\""))
        .unwrap_or_else(|| panic!("no expired_secret failures in {text}"));
    assert!(line.ends_with(" 2"), "{line}");
}

#[tokio::test]
async fn issue16_a_secrets_last_use_is_recorded_in_batches_at_most_once_an_hour() {
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let s = TestServer::builder().clock(Arc::new(clock.clone())).start().await;
    s.seed_scenario().await;
    let cc = ClientId::new("CC").unwrap();
    let last_used = || async { s.store.get_client(&cc).await.unwrap().unwrap().secrets[0].last_used_at };
    assert_eq!(last_used().await, None);
    let grant = "grant_type=client_credentials";
    let t0 = s.now();
    for _ in 0..5 {
        assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    }
    assert_eq!(last_used().await, None, "nothing written per request");
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0));
    // Within the hour (the default `secret_last_use_resolution_s`): nothing new to write;
    // after it, the new time.
    clock.advance(3599);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0));
    clock.advance(1);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(3600)));
    // A failed attempt is no use.
    clock.advance(7200);
    assert_eq!(s.token_basic("CC", "wrong", grant).await.0, 401);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(3600)));
    // Written to the minute.
    assert_eq!(t0.0 % 60, 0);
    clock.advance(17);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(3600 + 7200)));
}

#[tokio::test]
async fn issue17_the_last_use_resolution_is_configurable() {
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let mut file = tessera_server::FileConfig::default();
    file.limits.secret_last_use_resolution_s = Some(60);
    let s = TestServer::builder().clock(Arc::new(clock.clone())).file(file).start().await;
    s.seed_scenario().await;
    let cc = ClientId::new("CC").unwrap();
    let last_used = || async { s.store.get_client(&cc).await.unwrap().unwrap().secrets[0].last_used_at };
    let grant = "grant_type=client_credentials";
    let t0 = s.now();
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    clock.advance(59);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0));
    clock.advance(1);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(60)));
    // A restarted server starts from what the store holds: a use within the resolution of
    // the stored time is not written again (at a million clients, a million rows a restart).
    // Two minutes here, so that a write would show (t0+130 is written as t0+120).
    let mut file = tessera_server::FileConfig::default();
    file.limits.secret_last_use_resolution_s = Some(120);
    let dir = s.stop().await;
    let s = TestServer::builder().dir(dir).clock(Arc::new(clock.clone())).file(file).start().await;
    let last_used = || async { s.store.get_client(&cc).await.unwrap().unwrap().secrets[0].last_used_at };
    clock.advance(70);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(60)), "within two minutes of the stored time");
    clock.advance(50);
    assert_eq!(s.token_basic("CC", "cc_secret", grant).await.0, 200);
    s.running().flush_secret_usage().await;
    assert_eq!(last_used().await, Some(t0.plus(180)));
}

#[test]
fn issue16_the_cli_adds_secrets_with_an_expiry_expires_old_ones_and_shows_both_times() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    ok(d, &["client", "add", "svc"]);
    let out = ok(d, &["client", "secret", "add", "svc", "--expires-in", "7d"]);
    assert!(out.contains("expiring at"), "{out}");
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "svc"])).unwrap();
    let secrets = show["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    // Added in the same second: told apart by their expiry.
    let (old, new): (Vec<_>, Vec<_>) = secrets.iter().partition(|x| x["expires_at"].is_null());
    assert!(old[0]["last_used_at"].is_null());
    let week = new[0]["expires_at"].as_i64().unwrap() - new[0]["created_at"].as_i64().unwrap();
    assert!((7 * 86_400 - 5..=7 * 86_400 + 5).contains(&week), "{week}");
    let old = old[0]["id"].as_str().unwrap().to_owned();
    let old = old.as_str();
    assert!(ok(d, &["client", "secret", "expire", "svc", old, "--in", "1h"]).contains("expires at"));
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "svc"])).unwrap();
    let shown = show["secrets"].as_array().unwrap().iter().find(|x| x["id"] == old).unwrap().clone();
    assert!(shown["expires_at"].is_i64());
    assert_eq!(shown["expired"], false);
    for bad in [
        &["client", "secret", "add", "svc", "--expires-in", "0s"][..],
        &["client", "secret", "expire", "svc", old, "--in", "soon"],
    ] {
        let out = crate::cli::tessera(d, bad);
        assert!(!out.status.success(), "{bad:?}");
    }
}
