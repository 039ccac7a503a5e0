//! Client authentication cannot be turned into a brute-force tool, a queue or an oracle.

use tessera_server::FileConfig;
use tessera_server::admin::ClientSpec;
use tessera_server::limits::LimitsFile;
use tessera_types::ClientSecret;

use crate::harness::{Server, http, http_from, token};

const STRONG: &str = "Imported-Secret-7f3Kq9xLm2";

fn limits(l: LimitsFile) -> FileConfig {
    FileConfig { limits: l, ..Default::default() }
}

#[tokio::test]
async fn rfc6749_2_3_1_failed_authentications_back_off_exponentially_with_429() {
    let s = Server::start(limits(LimitsFile { failed_auth_free_attempts: Some(3), ..Default::default() })).await;
    let generated = s.client("gen", None, "jwt").await;
    s.client("imp", Some(STRONG), "jwt").await;
    let http = http();
    assert_eq!(token(&http, &s, "imp", STRONG).await.status, 200, "verified once: now cached");
    for _ in 0..3 {
        let a = token(&http, &s, "imp", "wrong-but-plausible-secret").await;
        assert_eq!((a.status, a.error()), (401, "invalid_client"));
    }
    let a = token(&http, &s, "imp", "wrong-but-plausible-secret").await;
    assert_eq!((a.status, a.error()), (401, "invalid_client"), "the fourth failure starts the backoff");
    let a = token(&http, &s, "imp", "another-wrong-guess-xyz").await;
    assert_eq!((a.status, a.error()), (429, "invalid_client"));
    // The 1 s backoff holds through the next whole second of the clock (see `throttle`).
    assert_eq!(a.retry_after(), Some(2));
    // Unknown ids from the same address are refused too: the address backs off.
    let a = token(&http, &s, "nobody", "whatever-secret-value").await;
    assert_eq!(a.status, 429);
    // Known-good credentials are not locked out by someone else's guessing.
    assert_eq!(token(&http, &s, "imp", STRONG).await.status, 200);
    assert_eq!(token(&http, &s, "gen", &generated).await.status, 200);
    // Once the backoff has passed, one more guess is verified; failing doubles the backoff.
    s.clock.advance(2);
    assert_eq!(token(&http, &s, "nobody", "whatever-secret-value").await.status, 401);
    let a = token(&http, &s, "nobody", "whatever-secret-value").await;
    assert_eq!((a.status, a.retry_after()), (429, Some(3)));
    // Another address is not affected by this one's failures (for a client id it did not try).
    let a = token(&http_from("127.0.0.2".parse().unwrap()), &s, "gen", &generated).await;
    assert_eq!(a.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn weak_imported_secrets_are_refused_unless_explicitly_allowed() {
    let s = Server::start(FileConfig::default()).await;
    let rng = tessera_server::clock::SystemRandom::default();
    use tessera_server::clock::Clock as _;
    for weak in ["a", " ", "cc_secret", "aaaaaaaaaaaaaaaaaaaaaaaa"] {
        // A value that is not a secret at all is refused before it can be registered.
        let Ok(secret) = ClientSecret::new(weak) else { continue };
        let new = ClientSpec { secret: Some(secret), ..crate::harness::spec("weak") };
        let err =
            tessera_server::admin::add_client(&s.store, new, 3600, &Default::default(), &rng, s.clock.now()).await;
        assert!(err.is_err(), "{weak:?} was accepted");
    }
    assert!(s.store.get_client(&tessera_types::ClientId::new("weak").unwrap()).await.unwrap().is_none());
    let sample = ClientSpec {
        secret: Some(ClientSecret::new("cc_secret").unwrap()),
        allow_weak_secret: true,
        ..crate::harness::spec("sample")
    };
    assert!(
        tessera_server::admin::add_client(&s.store, sample, 3600, &Default::default(), &rng, s.clock.now())
            .await
            .is_ok()
    );
    s.stop().await;
}
