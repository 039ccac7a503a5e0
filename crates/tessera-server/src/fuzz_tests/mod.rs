//! Property-based fuzzing (issue 10, part 9) of what the token endpoint reads from the
//! outside: the form parser, client credential extraction, and the whole endpoint as a tower
//! service. `PROPTEST_CASES` sets the number of cases per property (long runs: see README).

mod client_auth;
mod form;
mod token_endpoint;

use proptest::test_runner::Config;

/// `PROPTEST_CASES`, else `default`: short enough for CI, long on demand. Failures are not
/// persisted to files: a failing case found here becomes a named regression test.
pub(crate) fn config(default: u32) -> Config {
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
