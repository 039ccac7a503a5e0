//! The property tests' runner configuration, shared by every crate's fuzz tests.

use proptest::test_runner::Config;

/// `PROPTEST_CASES`, else `default`: short enough for CI, long on demand. Failures are not
/// persisted to files: a failing case found here becomes a named regression test.
pub fn proptest_config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    // Rejections (filters, assumptions) are counted over the whole run: scale their limits.
    Config {
        cases,
        max_local_rejects: cases.saturating_mul(8).max(65_536),
        max_global_rejects: (cases / 4).max(1024),
        failure_persistence: None,
        ..Config::default()
    }
}
