//! How long pruning holds up reference-token issuance: fills the embedded store with expired
//! tokens, then deletes them while a writer commits one fresh token after another through
//! the group-commit writer, and reports the commits that overlapped the delete.
//!
//! `prune_stall [--expired N] [--batch B]` (a batch above N deletes in one statement, as
//! before batching).

use std::time::{Duration, Instant};

use tessera_store::{Store, TokenRecord, TokenWriter};
use tessera_types::{ClientId, Resource, UnixTime};

fn token(n: usize, exp: i64) -> TokenRecord {
    TokenRecord {
        handle: format!("handle-{n:015}"),
        hash: format!("hash-{n:012}-padding-to-the-length-of-a-sha256-b64"),
        jti: tessera_types::Jti::new(format!("jti-{n:022}")).unwrap(),
        client_id: ClientId::new("bench-reference").unwrap(),
        scope: Some("api".parse().unwrap()),
        audiences: vec![Resource::new("api1").unwrap()],
        iat: UnixTime(exp - 3600),
        exp: UnixTime(exp),
        revoked: false,
        cnf: None,
        workload: None,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut expired, mut batch) = (300_000usize, 1000u32);
    while let Some(a) = args.next() {
        let v = args.next().expect("a value");
        match a.as_str() {
            "--expired" => expired = v.parse().unwrap(),
            "--batch" => batch = v.parse().unwrap(),
            other => panic!("unknown option {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(dir.path()).await.unwrap();
    for chunk in (0..expired).collect::<Vec<_>>().chunks(5000) {
        let records: Vec<TokenRecord> = chunk.iter().map(|n| token(*n, 1000)).collect();
        store.insert_tokens(&records).await.unwrap();
    }
    // Closing checkpoints the WAL the filling wrote, so what follows measures pruning alone.
    store.close().await;
    let store = Store::open_embedded(dir.path()).await.unwrap();
    let writer = TokenWriter::spawn(store.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let issuing = {
        let (writer, stop) = (writer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = expired;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                writer.insert(token(n, i64::MAX / 2)).await.unwrap();
                lat.push((started, started.elapsed()));
            }
            lat
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (deleted, _) = store.prune(UnixTime(2000), batch).await.unwrap();
    let pruning = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat: Vec<Duration> = issuing
        .await
        .unwrap()
        .into_iter()
        .filter(|(at, took)| *at + *took >= started && *at <= started + pruning)
        .map(|(_, took)| took)
        .collect();
    lat.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "expired": expired, "batch": batch, "deleted": deleted, "prune_ms": ms(pruning),
            "commits": lat.len(), "commit_p50_ms": ms(lat[lat.len() / 2]),
            "commit_p99_ms": ms(lat[lat.len() * 99 / 100]), "commit_max_ms": ms(*lat.last().unwrap()),
        })
    );
}
