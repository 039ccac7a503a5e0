//! Issuance limits per client: a token bucket, a monitor-only mode, and a cap on live
//! reference tokens.

use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_server::limits::{LimitsFile, RateLimitMode};

use crate::harness::{Server, http, token};

fn limits(l: LimitsFile) -> FileConfig {
    FileConfig { limits: l, ..Default::default() }
}

#[tokio::test]
async fn past_the_rate_and_burst_a_client_gets_429_with_retry_after_unless_its_own_limit_allows() {
    let s = Server::start(limits(LimitsFile {
        issuance_rate_per_second: Some(0.1),
        issuance_burst: Some(3),
        ..Default::default()
    }))
    .await;
    let secret = s.client("busy", None, "jwt").await;
    let unlimited = s
        .client_with(ClientSpec {
            scopes: vec![tessera_types::ScopeName::new("api").unwrap()],
            issuance_rate_per_second: Some(0.0),
            ..crate::harness::spec("batch")
        })
        .await;
    let http = http();
    for _ in 0..3 {
        assert_eq!(token(&http, &s, "busy", &secret).await.status, 200);
    }
    let a = token(&http, &s, "busy", &secret).await;
    assert_eq!((a.status, a.error()), (429, "temporarily_unavailable"));
    assert!(a.retry_after().is_some_and(|r| (1..=10).contains(&r)), "{:?}", a.retry_after());
    assert_eq!(a.headers["cache-control"], "no-store");
    // The per-client override: no limit for this one.
    for _ in 0..10 {
        assert_eq!(token(&http, &s, "batch", &unlimited).await.status, 200);
    }
    assert_eq!(s.running().tokens_issued(), 13, "refused requests issued nothing");
    s.stop().await;
}

#[tokio::test]
async fn in_monitor_mode_the_rate_limit_only_counts() {
    let s = Server::start(limits(LimitsFile {
        issuance_rate_per_second: Some(0.1),
        issuance_burst: Some(2),
        rate_limit_mode: Some(RateLimitMode::Monitor),
        ..Default::default()
    }))
    .await;
    let secret = s.client("busy", None, "jwt").await;
    let http = http();
    for _ in 0..5 {
        assert_eq!(token(&http, &s, "busy", &secret).await.status, 200);
    }
    assert_eq!(s.running().rate_limited_monitored(), 3);
    s.stop().await;
}

#[tokio::test]
async fn a_client_cannot_hold_more_live_reference_tokens_than_its_cap() {
    let s = Server::start(limits(LimitsFile {
        max_live_reference_tokens: Some(3),
        issuance_rate_per_second: Some(0.0),
        ..Default::default()
    }))
    .await;
    let secret = s.client("ref", None, "reference").await;
    let http = http();
    for _ in 0..3 {
        assert_eq!(token(&http, &s, "ref", &secret).await.status, 200);
    }
    let a = token(&http, &s, "ref", &secret).await;
    assert_eq!((a.status, a.error()), (429, "temporarily_unavailable"));
    assert_eq!(s.store.token_counts().await.unwrap().0, 3, "nothing stored past the cap");
    s.stop().await;
}
