//! Issue 16, automatic signing-key rotation over real sockets, on a manual clock: a whole
//! cycle (the next key published two days ahead, activated, the old key kept until its tokens
//! expired, then removed) with a guard validating tokens throughout without a refusal; and
//! two instances sharing PostgreSQL performing each step once.

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_guard::{Guard, GuardConfig, Mode};
use tessera_server::FileConfig;
use tessera_store::{AuditAction, AuditQuery, KeyStatus};
use tessera_testkit::Authority as _;
use tessera_types::clock::{Clock as _, ManualClock};
use tessera_types::{Issuer, Resource, UnixTime};

use crate::harness::TestServer;

const API: &str = "rs_api";
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn kid_of(token: &str) -> String {
    tessera_testkit::jwt_header(token)["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn issue16_a_guard_validates_tokens_across_a_whole_rotation_cycle_without_a_refusal() {
    let start = UnixTime(1_800_000_000);
    let clock = ManualClock::new(start);
    let s = TestServer::builder().clock(Arc::new(clock.clone())).start().await;
    s.add_scope("api", &[API]).await;
    // Tokens live a day: the retired key is kept a day (and the leeway) after it stops.
    s.add_client_with(tessera_server::admin::ClientSpec {
        secret: tessera_testkit::secret("cc_secret_0123456789abcdef"),
        scopes: vec![tessera_testkit::scope("api")],
        access_token_lifetime: Some(DAY),
        ..tessera_testkit::client("CC")
    })
    .await;
    let cfg = GuardConfig::new(Issuer::new(s.issuer()).unwrap(), Resource::new(API).unwrap(), Mode::Jwt)
        .with_http_client(s.http.clone())
        .with_clock(Arc::new(clock.clone()));
    let guard = Guard::new(cfg).unwrap();
    let token = || s.token("CC", "cc_secret_0123456789abcdef");
    let first = token().await;
    guard.authenticate(&first).await.expect("day 0");
    let k0 = kid_of(&first);

    // Every 6 hours for 32 days: a rotation pass, a new token, and every token still within
    // its lifetime validated by the same guard.
    let mut live: Vec<(UnixTime, String)> = vec![(start, first)];
    let mut performed = Vec::new();
    let mut kids = BTreeSet::from([k0.clone()]);
    let activation = start.plus(30 * DAY);
    let mut fetched_before_activation = None;
    while clock.now() < start.plus(32 * DAY) {
        let now = clock.now();
        let next = if now == activation.plus(-120) {
            activation
        } else if now < activation.plus(-120) && now.plus(6 * HOUR) > activation.plus(-120) {
            // Two minutes before the activation: the guard refetches the JWKS (its copy is
            // hours old, past its 5-minute max age), then the next key starts signing.
            activation.plus(-120)
        } else {
            now.plus(6 * HOUR)
        };
        clock.advance(next.0 - now.0);
        for done in s.running().rotate_keys_now().await.unwrap() {
            performed.push((clock.now().0 - start.0, done));
        }
        s.sync().await;
        let t = token().await;
        kids.insert(kid_of(&t));
        live.push((clock.now(), t));
        live.retain(|(at, _)| clock.now() < at.plus(DAY));
        for (_, t) in &live {
            let outcome = guard.authenticate(t).await;
            let day = (clock.now().0 - start.0) as f64 / DAY as f64;
            assert!(outcome.is_ok(), "day {day:.2}: token of {} refused: {outcome:?}", kid_of(t));
        }
        if clock.now() == activation.plus(-120) {
            // The next key, published two days ago, is in the copy the guard just fetched...
            assert_eq!(s.store.list_keys().await.unwrap().iter().filter(|k| k.status == KeyStatus::Next).count(), 1);
            fetched_before_activation = Some(guard.metrics().jwks_fetches);
        }
        if clock.now() == activation {
            // ...so the first token it signs passed without another fetch.
            assert_ne!(kid_of(&live.last().unwrap().1), k0, "signed by the new key");
            assert_eq!(Some(guard.metrics().jwks_fetches), fetched_before_activation, "no fetch at activation");
        }
    }
    let steps: Vec<(i64, &str)> = performed.iter().map(|(t, s)| (*t, s.name())).collect();
    assert_eq!(steps[0], (28 * DAY, "prepublish"), "{steps:?}");
    assert_eq!(steps[1].1, "activate", "{steps:?}");
    assert_eq!(steps[1].0, 30 * DAY, "{steps:?}");
    // Removed once every token it signed has expired: a day and the leeway after.
    assert_eq!(steps[2].1, "remove", "{steps:?}");
    assert!(steps[2].0 >= steps[1].0 + DAY + 300, "{steps:?}");
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(kids.len(), 2, "two keys signed over the cycle: {kids:?}");
    let jwks = s.get_json("/.well-known/jwks").await;
    let published: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(!published.contains(&k0.as_str()), "the old key is gone: {published:?}");
    // Each step is in the audit trail, made by the server.
    let audit = s.store.list_audit(&AuditQuery::default()).await.unwrap();
    for action in [AuditAction::KeyActivated, AuditAction::KeyRemoved] {
        let e = audit.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("{action} audited"));
        assert_eq!(e.actor, "server");
    }
}

#[tokio::test]
async fn issue16_two_instances_sharing_postgresql_perform_each_rotation_step_once() {
    let Some(base) = tessera_testkit::postgres::shared_base_url() else {
        eprintln!("SKIPPED issue16_two_instances_sharing_postgresql_perform_each_rotation_step_once: no PostgreSQL");
        return;
    };
    let db = tessera_testkit::postgres::fresh_database(&base).await;
    let start = UnixTime(1_800_000_000);
    let (clock_a, clock_b) = (ManualClock::new(start), ManualClock::new(start));
    let file = |kek: Option<std::path::PathBuf>| FileConfig {
        database_url: Some(tessera_store::pg_url::DatabaseUrl::new(db.clone())),
        key_encryption_key_file: kek,
        ..FileConfig::default()
    };
    let a = TestServer::builder().clock(Arc::new(clock_a.clone())).file(file(None)).start().await;
    let kek = a.data_dir().join("key-encryption.key");
    let b = TestServer::builder().clock(Arc::new(clock_b.clone())).file(file(Some(kek))).start().await;
    // Each day's step in the store's audit trail (recorded in the step's own transaction):
    // the count of its action says how often it was performed, whoever performed it. Each
    // server's own rotator (a tick a minute, the first at start) may be the one that acts on
    // a day: on a loaded machine its first tick can read the clock after the test advanced it.
    let count = |action: AuditAction| {
        let store = a.store.clone();
        async move {
            let query = AuditQuery { action: Some(action), ..Default::default() };
            store.list_audit(&query).await.unwrap().len()
        }
    };
    let steps = [(28, AuditAction::KeyAdded), (2, AuditAction::KeyActivated), (2, AuditAction::KeyRemoved)];
    for (days, action) in steps {
        let before = count(action).await;
        clock_a.advance(days * DAY);
        clock_b.advance(days * DAY);
        let (ra, rb) = tokio::join!(a.running().rotate_keys_now(), b.running().rotate_keys_now());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let day = clock_a.now().0 - start.0;
        assert!(ra.len() + rb.len() <= 1, "day {day}: never both: {ra:?} {rb:?}");
        assert_eq!(count(action).await, before + 1, "day {day}: {action} exactly once: {ra:?} {rb:?}");
    }
    let keys = a.store.list_keys().await.unwrap();
    let phases: Vec<KeyStatus> = keys.iter().map(|k| k.status).collect();
    assert_eq!(phases, [KeyStatus::Active], "prepublished, activated, the old one removed: {keys:?}");
    // Both publish it alone.
    for s in [&a, &b] {
        s.sync().await;
        let jwks = s.get_json("/.well-known/jwks").await;
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
        assert_eq!(jwks["keys"][0]["kid"], keys[0].kid.as_str());
    }
}
