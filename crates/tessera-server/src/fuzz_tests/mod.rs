//! Property-based fuzzing (issue 10, part 9) of what the token endpoint reads from the
//! outside: the form parser, client credential extraction, and the whole endpoint as a tower
//! service. `PROPTEST_CASES` sets the number of cases per property (long runs: see README).

mod client_auth;
mod form;
mod token_endpoint;

/// `PROPTEST_CASES`, else the default given: the one configuration all crates' fuzz tests use.
pub(crate) use tessera_testkit::proptest_config as config;
