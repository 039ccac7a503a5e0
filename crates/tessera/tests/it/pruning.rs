//! The running server's pruner: expired reference tokens and revocation entries are deleted on
//! a schedule, by the injected clock. A task of the running server, so a real one; the
//! revocation rules themselves (RFC 7009) are tested on the router in tessera-server.

use std::sync::Arc;
use std::time::Duration;

use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_server::clock::ManualClock;
use tessera_testkit::Authority as _;
use tessera_types::UnixTime;

use crate::harness::TestServer;

const API: (&str, &str) = ("rs_dataEventRecordsApi", "api_secret");

#[tokio::test]
async fn expired_tokens_and_revocations_are_pruned_on_a_schedule() {
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let file = FileConfig { prune_interval_ms: Some(20), ..Default::default() };
    let s = TestServer::builder().clock(Arc::new(clock.clone())).file(file).start().await;
    s.seed_reference_scenario().await;
    s.add_client_with(ClientSpec {
        secret: tessera_testkit::secret("jwt_secret"),
        scopes: vec![tessera_testkit::scope("dataEventRecords")],
        access_token_lifetime: Some(600),
        ..tessera_testkit::client("jwt")
    })
    .await;
    for _ in 0..20 {
        s.token("CC", "cc_secret").await;
    }
    let jwt = s.token("jwt", "jwt_secret").await;
    let (status, _, _) = s.post_form("/connect/revoke", "jwt", "jwt_secret", &format!("token={jwt}")).await;
    assert_eq!(status, 200);
    assert_eq!(s.store.token_counts().await.unwrap(), (20, 1));
    // Nothing has expired: pruning runs (every 20 ms) but keeps everything.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.store.token_counts().await.unwrap(), (20, 1));
    // Past the JWT's exp, its revocation entry goes; the reference tokens (3600 s) stay.
    clock.advance(601);
    wait_for(&s, (20, 0)).await;
    let fresh = s.token("CC", "cc_secret").await;
    clock.advance(3000);
    wait_for(&s, (1, 0)).await;
    assert_eq!(s.introspect_as(API.0, API.1, &fresh).await["active"], true);
}

async fn wait_for(s: &TestServer, want: (i64, i64)) {
    for _ in 0..500 {
        if s.store.token_counts().await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("counts stayed {:?}, wanted {want:?}", s.store.token_counts().await.unwrap());
}
