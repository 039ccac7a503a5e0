//! Storage bounds and what a disabled, removed or compromised client's tokens are worth.

use std::time::Duration;

use tessera_server::FileConfig;
use tessera_server::limits::LimitsFile;
use tessera_types::{ClientId, UnixTime};

use crate::harness::{Server, http, token};

async fn introspect(s: &Server, api_secret: &str, tok: &str) -> bool {
    let r = http()
        .post(s.url("/connect/introspect"))
        .basic_auth("api1", Some(api_secret))
        .form(&[("token", tok)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<serde_json::Value>().await.unwrap()["active"] == true
}

async fn api_client(s: &Server) -> String {
    s.client_with(tessera_server::admin::ClientSpec {
        permissions: vec!["ept:introspection".parse().unwrap()],
        ..crate::harness::spec("api1")
    })
    .await
}

#[tokio::test]
async fn a_disabled_or_removed_clients_tokens_are_inactive_and_removal_deletes_its_reference_tokens() {
    let s = Server::start(FileConfig::default()).await;
    let api = api_client(&s).await;
    let jwt_secret = s.client("J", None, "jwt").await;
    let ref_secret = s.client("R", None, "reference").await;
    let http = http();
    let jwt = token(&http, &s, "J", &jwt_secret).await.body["access_token"].as_str().unwrap().to_owned();
    let reference = token(&http, &s, "R", &ref_secret).await.body["access_token"].as_str().unwrap().to_owned();
    assert!(introspect(&s, &api, &jwt).await && introspect(&s, &api, &reference).await);

    for id in ["J", "R"] {
        s.store.set_client_enabled(&ClientId::new(id).unwrap(), false, tessera_types::UnixTime(0)).await.unwrap();
    }
    s.sync().await;
    assert!(!introspect(&s, &api, &jwt).await, "a disabled client's JWT stayed active");
    assert!(!introspect(&s, &api, &reference).await, "a disabled client's reference token stayed active");

    for id in ["J", "R"] {
        s.store.set_client_enabled(&ClientId::new(id).unwrap(), true, tessera_types::UnixTime(0)).await.unwrap();
    }
    s.sync().await;
    assert!(introspect(&s, &api, &reference).await, "enabling again restores what was not revoked");

    assert_eq!(s.store.token_counts().await.unwrap().0, 1);
    for id in ["J", "R"] {
        assert!(s.store.remove_client(&ClientId::new(id).unwrap(), tessera_types::UnixTime(0)).await.unwrap());
    }
    s.sync().await;
    assert_eq!(s.store.token_counts().await.unwrap().0, 0, "removal deletes the client's reference tokens");
    assert!(!introspect(&s, &api, &jwt).await, "a removed client's JWT stayed active");
    s.stop().await;
}

#[tokio::test]
async fn revoking_every_token_of_a_client_spares_later_tokens_and_other_clients() {
    let s = Server::start(FileConfig::default()).await;
    let api = api_client(&s).await;
    let secret = s.client("C", None, "jwt").await;
    let ref_secret = s.client("CR", None, "reference").await;
    let other_secret = s.client("O", None, "reference").await;
    let http = http();
    let old_jwt = token(&http, &s, "C", &secret).await.body["access_token"].as_str().unwrap().to_owned();
    let old_ref = token(&http, &s, "CR", &ref_secret).await.body["access_token"].as_str().unwrap().to_owned();
    let other = token(&http, &s, "O", &other_secret).await.body["access_token"].as_str().unwrap().to_owned();

    let cutoff = UnixTime(s.clock_now() + 1);
    for id in ["C", "CR"] {
        assert!(s.store.revoke_client_tokens(&ClientId::new(id).unwrap(), cutoff).await.unwrap().is_some());
    }
    assert!(s.store.revoke_client_tokens(&ClientId::new("nobody").unwrap(), cutoff).await.unwrap().is_none());
    s.sync().await;
    assert!(!introspect(&s, &api, &old_jwt).await);
    assert!(!introspect(&s, &api, &old_ref).await);
    assert!(introspect(&s, &api, &other).await, "another client's token was touched");
    assert_eq!(s.store.token_counts().await.unwrap().0, 1, "the client's reference tokens are deleted");

    // Tokens issued after the cut-off are good.
    s.clock.advance(2);
    let new_jwt = token(&http, &s, "C", &secret).await.body["access_token"].as_str().unwrap().to_owned();
    assert!(introspect(&s, &api, &new_jwt).await);
    s.stop().await;
}

#[tokio::test]
async fn expired_entries_are_pruned_in_batches_and_live_counts_follow() {
    let limits = LimitsFile { prune_batch: Some(7), max_live_reference_tokens: Some(5), ..Default::default() };
    let s = Server::start(FileConfig { limits, prune_interval_ms: Some(50), ..Default::default() }).await;
    let secret = s.client("R", None, "reference").await;
    let http = http();
    // A recount racing with a commit may count a token twice until the next recount (the cap
    // errs on the side of refusing), so fewer than five may get through, never more.
    let mut issued = 0;
    for _ in 0..8 {
        match token(&http, &s, "R", &secret).await.status {
            200 => issued += 1,
            status => assert_eq!(status, 429),
        }
    }
    assert!((1..=5).contains(&issued), "{issued} issued with a cap of 5");
    assert_eq!(s.store.token_counts().await.unwrap().0, issued as i64);
    // Past their expiry the pruner deletes them (in batches of 7 here) and recounts.
    s.clock.advance(3601);
    let mut pruned = false;
    for _ in 0..200 {
        if s.store.token_counts().await.unwrap().0 == 0 {
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pruned, "expired reference tokens were not pruned");
    let mut served = false;
    for _ in 0..100 {
        if token(&http, &s, "R", &secret).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the cap did not free up once the tokens expired");
    s.stop().await;
}

/// With the server's default cap off, only the clients with a cap of their own are recounted
/// (issue 17: the recount costs nothing without any): such a client is held to its cap and
/// freed once its tokens are pruned, and an uncapped one is never held back.
#[tokio::test]
async fn a_clients_own_cap_holds_and_frees_up_with_the_default_cap_off() {
    let limits = LimitsFile { max_live_reference_tokens: Some(0), ..Default::default() };
    let s = Server::start(FileConfig { limits, prune_interval_ms: Some(50), ..Default::default() }).await;
    let capped = s
        .client_with(tessera_server::admin::ClientSpec {
            scopes: vec![tessera_testkit::scope("api")],
            token_format: Some("reference".parse().unwrap()),
            max_live_reference_tokens: Some(2),
            ..crate::harness::spec("C")
        })
        .await;
    let free = s.client("U", None, "reference").await;
    let http = http();
    let mut issued = 0;
    for _ in 0..5 {
        match token(&http, &s, "C", &capped).await.status {
            200 => issued += 1,
            status => assert_eq!(status, 429),
        }
        assert_eq!(token(&http, &s, "U", &free).await.status, 200, "the uncapped client is never held back");
    }
    assert!((1..=2).contains(&issued), "{issued} issued with a cap of 2");
    s.clock.advance(3601);
    let mut served = false;
    for _ in 0..200 {
        if token(&http, &s, "C", &capped).await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the cap did not free up once the tokens expired and were pruned");
    s.stop().await;
}
