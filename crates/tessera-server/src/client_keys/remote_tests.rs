//! The cache's rules on a manual clock with a closure for a key server: first use, TTL,
//! refetch interval (failures included), single flight, timeout, and the same checks as a
//! registered set.

use std::sync::atomic::AtomicUsize;

use serde_json::json;
use tessera_jose::SigningKey;
use tessera_types::SigningAlg;
use tessera_types::clock::ManualClock;

use super::*;

const T0: UnixTime = UnixTime(1_800_000_000);

/// A key server: counts fetches, answers what `answer` holds, and, while `hold` has no
/// permit, does not answer URIs containing "slow".
#[derive(Clone)]
struct Fake {
    calls: Arc<AtomicUsize>,
    answer: Arc<Mutex<Result<String, FetchError>>>,
    hold: Arc<tokio::sync::Semaphore>,
}

impl Fake {
    fn new() -> Self {
        Self {
            calls: Arc::default(),
            answer: Arc::new(Mutex::new(Err(FetchError::Status(404)))),
            hold: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    fn serve(&self, keys: &[&SigningKey]) {
        let set = json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() });
        *self.answer.lock().unwrap() = Ok(set.to_string());
    }

    fn fail(&self, e: FetchError) {
        *self.answer.lock().unwrap() = Err(e);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn cache(&self, clock: &ManualClock, timeout: Duration) -> Arc<RemoteKeys> {
        let fake = self.clone();
        let fetcher = move |uri: JwksUri| {
            let fake = fake.clone();
            async move {
                fake.calls.fetch_add(1, Ordering::SeqCst);
                if uri.as_str().contains("slow") {
                    fake.hold.acquire().await.unwrap().forget();
                }
                fake.answer.lock().unwrap().clone()
            }
        };
        let limits = RemoteKeyLimits { fetch_timeout: timeout, ..RemoteKeyLimits::default() };
        Arc::new(RemoteKeys::new(Arc::new(fetcher), Arc::new(clock.clone()), limits, KeyBounds::default()))
    }
}

fn key() -> SigningKey {
    SigningKey::generate(SigningAlg::ES256).unwrap().0
}

fn id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn uri(s: &str) -> JwksUri {
    JwksUri::new(format!("https://{s}.example/jwks")).unwrap()
}

fn kids(keys: &FetchedKeys) -> Vec<String> {
    keys.keys.iter().map(|k| k.kid.as_ref().unwrap().to_string()).collect()
}

#[tokio::test]
async fn keys_are_fetched_on_first_use_and_kept_for_the_ttl() {
    let (fake, clock, k1) = (Fake::new(), ManualClock::new(T0), key());
    fake.serve(&[&k1]);
    let cache = fake.cache(&clock, Duration::from_secs(5));
    let (c, u) = (id("svc"), uri("svc"));
    assert_eq!(fake.calls(), 0, "nothing is fetched before it is needed");
    assert_eq!(kids(&cache.keys(&c, &u, None).await.unwrap()), [k1.kid.to_string()]);
    clock.advance(299);
    cache.keys(&c, &u, None).await.unwrap();
    assert_eq!(fake.calls(), 1, "cached for jwks_uri_cache_ttl_s");
    clock.advance(1);
    cache.keys(&c, &u, None).await.unwrap();
    assert_eq!(fake.calls(), 2, "fetched again once the TTL has passed");
    // Another URI for the same client (an update) is another set.
    cache.keys(&c, &uri("moved"), None).await.unwrap();
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let (fake, clock, k1, k2) = (Fake::new(), ManualClock::new(T0), key(), key());
    fake.serve(&[&k1]);
    let cache = fake.cache(&clock, Duration::from_secs(5));
    let (c, u) = (id("svc"), uri("svc"));
    let first = cache.keys(&c, &u, None).await.unwrap();
    fake.serve(&[&k1, &k2]);
    for _ in 0..20 {
        assert!(cache.refetch(&c, &u, None, first.generation).await.is_none());
    }
    assert_eq!(fake.calls(), 1, "within the interval of the first fetch: none");
    clock.advance(30);
    let newer = cache.refetch(&c, &u, None, first.generation).await.unwrap();
    assert_eq!(kids(&newer), [k1.kid.to_string(), k2.kid.to_string()]);
    assert_eq!(fake.calls(), 2);
    // A request that saw the old set finds the new one without another fetch.
    assert_eq!(cache.refetch(&c, &u, None, first.generation).await.unwrap().generation, newer.generation);
    assert!(cache.refetch(&c, &u, None, newer.generation).await.is_none());
    assert_eq!(fake.calls(), 2);
    // A failed refetch counts against the interval too, and keeps the fresh keys.
    clock.advance(30);
    fake.fail(FetchError::Status(500));
    assert!(cache.refetch(&c, &u, None, newer.generation).await.is_none());
    clock.advance(29);
    assert!(cache.refetch(&c, &u, None, newer.generation).await.is_none());
    assert_eq!(fake.calls(), 3, "no hammering of a broken URI");
    assert_eq!(cache.keys(&c, &u, None).await.unwrap().generation, newer.generation, "still fresh: kept");
}

#[tokio::test]
async fn after_a_failed_fetch_stale_keys_are_not_used_and_the_interval_holds() {
    let (fake, clock, k1) = (Fake::new(), ManualClock::new(T0), key());
    let cache = fake.cache(&clock, Duration::from_secs(5));
    let (c, u) = (id("svc"), uri("svc"));
    assert_eq!(cache.keys(&c, &u, None).await.unwrap_err(), FetchError::Status(404));
    fake.serve(&[&k1]);
    assert_eq!(cache.keys(&c, &u, None).await.unwrap_err(), FetchError::RecentlyFailed);
    assert_eq!(fake.calls(), 1);
    clock.advance(30);
    cache.keys(&c, &u, None).await.unwrap();
    clock.advance(300);
    fake.fail(FetchError::Status(500));
    assert_eq!(cache.keys(&c, &u, None).await.unwrap_err(), FetchError::Status(500), "expired keys are not served");
}

#[tokio::test]
async fn concurrent_requests_for_one_client_share_a_fetch_and_other_clients_do_not_wait() {
    let (fake, clock, k1) = (Fake::new(), ManualClock::new(T0), key());
    fake.serve(&[&k1]);
    let cache = fake.cache(&clock, Duration::from_secs(60));
    let waiting: Vec<_> = (0..16)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.keys(&id("slow"), &uri("slow"), None).await.map(|k| k.generation) })
        })
        .collect();
    // While the slow client's fetch hangs, another client's keys come at once.
    while fake.calls() == 0 {
        tokio::task::yield_now().await;
    }
    cache.keys(&id("quick"), &uri("quick"), None).await.unwrap();
    assert_eq!(fake.calls(), 2, "one fetch for the 16 slow requests, one for the quick client");
    fake.hold.add_permits(1);
    let mut generations = Vec::new();
    for task in waiting {
        generations.push(task.await.unwrap().unwrap());
    }
    assert!(generations.iter().all(|g| *g == generations[0]), "{generations:?}");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_fetch_outlives_the_request_that_started_it() {
    let (fake, clock, k1) = (Fake::new(), ManualClock::new(T0), key());
    fake.serve(&[&k1]);
    let cache = fake.cache(&clock, Duration::from_secs(60));
    let abandoned = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.keys(&id("slow"), &uri("slow"), None).await.map(|_| ()) })
    };
    while fake.calls() == 0 {
        tokio::task::yield_now().await;
    }
    // The request goes away (its client hung up) while the key server has not answered.
    abandoned.abort();
    assert!(abandoned.await.unwrap_err().is_cancelled());
    fake.hold.add_permits(1);
    // The fetch went on: the next request has the keys, without a fetch of its own and
    // without being refused for the interval.
    assert_eq!(kids(&cache.keys(&id("slow"), &uri("slow"), None).await.unwrap()), [k1.kid.to_string()]);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_fetch_that_does_not_finish_in_time_fails() {
    let (fake, clock) = (Fake::new(), ManualClock::new(T0));
    let cache = fake.cache(&clock, Duration::from_millis(50));
    assert_eq!(cache.keys(&id("slow"), &uri("slow"), None).await.unwrap_err(), FetchError::Timeout);
}

#[tokio::test]
async fn a_fetched_set_is_checked_like_a_registered_one() {
    let (fake, clock, k1) = (Fake::new(), ManualClock::new(T0), key());
    let mut private = serde_json::to_value(k1.public_jwk()).unwrap();
    private["d"] = "AAAA".into();
    *fake.answer.lock().unwrap() = Ok(json!({ "keys": [private] }).to_string());
    let cache = fake.cache(&clock, Duration::from_secs(5));
    let FetchError::Refused(why) = cache.keys(&id("svc"), &uri("svc"), None).await.unwrap_err() else { panic!() };
    assert!(why.contains("private member") && !why.contains("AAAA"), "{why}");
    *fake.answer.lock().unwrap() = Ok("not json".into());
    clock.advance(30);
    assert!(matches!(cache.keys(&id("svc"), &uri("svc"), None).await, Err(FetchError::Refused(_))));
}

#[test]
fn only_https_urls_with_a_host_are_fetched() {
    assert!(url(&uri("svc")).is_ok());
    assert!(url(&JwksUri::new("https://exa%mple/jwks").unwrap()).is_err());
}

/// The real fetcher against a real HTTPS key server (tessera-testkit's).
async fn over_https(answer: tessera_testkit::jwks_server::Answer, max_bytes: usize) -> Result<String, FetchError> {
    let server = tessera_testkit::jwks_server::JwksServer::start(answer).await;
    let limits = RemoteKeyLimits { extra_roots: Some(TrustRoots::read(&server.ca).unwrap()), ..Default::default() };
    let fetcher = HttpFetcher::new(&limits, max_bytes);
    let uri = JwksUri::new(&server.url).unwrap();
    // Far past what a bounded read takes: a reader that does not stop at the bound ends here.
    tokio::time::timeout(Duration::from_secs(20), fetcher.fetch(&uri, None))
        .await
        .expect("the fetch stopped at its bound")
}

#[tokio::test]
async fn the_http_fetcher_stops_reading_at_the_bound() {
    use tessera_testkit::jwks_server::Answer;
    assert_eq!(over_https(Answer::Endless, 4096).await.unwrap_err(), FetchError::TooLarge(4096));
    let doc = json!({ "keys": [] });
    assert_eq!(over_https(Answer::Json(doc.clone()), 4096).await.unwrap(), doc.to_string());
    assert_eq!(over_https(Answer::Streamed(" ".repeat(4097)), 4096).await.unwrap_err(), FetchError::TooLarge(4096));
    assert_eq!(over_https(Answer::Status(500), 4096).await.unwrap_err(), FetchError::Status(500));
}

#[tokio::test]
async fn the_http_fetcher_follows_no_redirect_and_asks_for_json() {
    use tessera_testkit::jwks_server::{Answer, JwksServer};
    let server = JwksServer::start(Answer::Status(404)).await;
    server.answer(Answer::Redirect(server.moved_url()));
    server.serve_moved(json!({ "keys": [key().public_jwk()] }));
    let limits = RemoteKeyLimits { extra_roots: Some(TrustRoots::read(&server.ca).unwrap()), ..Default::default() };
    let fetched = HttpFetcher::new(&limits, 4096).fetch(&JwksUri::new(&server.url).unwrap(), None).await;
    assert_eq!(fetched.unwrap_err(), FetchError::Status(302));
    assert_eq!((server.requests(), server.moved_requests()), (1, 0));
    assert_eq!(server.last_accept().as_deref(), Some("application/json"));
}

#[test]
fn trust_roots_must_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    assert!(TrustRoots::read(&empty).unwrap_err().contains("no PEM certificate"));
    assert!(TrustRoots::read(&dir.path().join("absent.pem")).is_err());
}

#[tokio::test]
async fn a_trusts_own_ca_is_the_only_anchor_its_fetches_accept() {
    use tessera_testkit::jwks_server::{Answer, JwksServer};
    let server = JwksServer::start(Answer::Json(json!({ "keys": [] }))).await;
    let other = JwksServer::start(Answer::Json(json!({ "keys": [] }))).await;
    let pem = |s: &JwksServer| TrustRoots::from_pem("test".into(), &std::fs::read(&s.ca).unwrap()).unwrap();
    let uri = JwksUri::new(&server.url).unwrap();
    // No server-wide anchor for it: the trust's CA alone makes the fetch succeed.
    let fetcher = HttpFetcher::new(&RemoteKeyLimits::default(), 4096);
    assert!(matches!(fetcher.fetch(&uri, None).await, Err(FetchError::Transport(_))));
    assert!(fetcher.fetch(&uri, Some(&pem(&server))).await.is_ok());
    // Pinned means pinned: with another CA as the trust's, the server-wide anchor that would
    // accept the certificate is not consulted.
    let limits = RemoteKeyLimits { extra_roots: Some(TrustRoots::read(&server.ca).unwrap()), ..Default::default() };
    let fetcher = HttpFetcher::new(&limits, 4096);
    assert!(fetcher.fetch(&uri, None).await.is_ok());
    assert!(matches!(fetcher.fetch(&uri, Some(&pem(&other))).await, Err(FetchError::Transport(_))));
}
