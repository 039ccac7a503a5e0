//! The signing floor: how many JWT-sized messages one thread signs per second with aws-lc-rs
//! (through tessera-jose's `SigningKey`, the key type the server signs with), per algorithm.
//!
//! `sign_floor [--seconds S] [--algs RS256,ES256,EdDSA]` prints `{"RS256": sign/s, ...}`, the
//! best of ten windows of S/10 seconds each.
//! Run it pinned to one core (`taskset -c 0`); it never starts a second thread.

use std::time::{Duration, Instant};

use tessera_jose::SigningKey;
use tessera_types::SigningAlg;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seconds: f64 = arg("--seconds").map_or(2.0, |s| s.parse().expect("seconds"));
    let algs = arg("--algs").unwrap_or_else(|| "RS256,ES256,EdDSA".into());
    // A signing input the size of an access token's: base64url header '.' base64url claims.
    let message = format!("{}.{}", "h".repeat(100), "c".repeat(300));
    let mut out = serde_json::Map::new();
    for name in algs.split(',') {
        let alg = match name {
            "RS256" => SigningAlg::RS256,
            "ES256" => SigningAlg::ES256,
            "EdDSA" => SigningAlg::EdDSA,
            "PS256" => SigningAlg::PS256,
            other => panic!("unknown algorithm {other}"),
        };
        let (key, _) = SigningKey::generate(alg).expect("generate a key");
        // Warm caches and the CPU's clock for a tenth of the time, then count.
        let warm = Instant::now() + Duration::from_secs_f64(seconds / 10.0);
        while Instant::now() < warm {
            std::hint::black_box(key.sign(message.as_bytes()).expect("sign"));
        }
        // The best of ten windows: a floor is what the core can do, and on a machine others
        // share some windows lose the core for a while.
        let window = Duration::from_secs_f64(seconds / 10.0);
        let mut best = 0f64;
        for _ in 0..10 {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < window {
                for _ in 0..4 {
                    std::hint::black_box(key.sign(message.as_bytes()).expect("sign"));
                }
                n += 4;
            }
            best = best.max(n as f64 / start.elapsed().as_secs_f64());
        }
        out.insert(name.to_owned(), serde_json::json!(best.round()));
    }
    println!("{}", serde_json::Value::Object(out));
}
