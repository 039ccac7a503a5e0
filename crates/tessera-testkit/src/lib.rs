//! Test support for the Tessera workspace, used only as a dev-dependency (never published), so
//! that no library has to ship test helpers: a real server on a socket with a client that trusts
//! its CA ([`TestServer`]), the router driven as a tower service with no socket ([`TestApp`]),
//! one seeding and request vocabulary over both ([`Authority`]), a throwaway PostgreSQL
//! ([`postgres`]), a blackholed authority ([`blackhole`]), threads' scheduling policies
//! ([`thread_policies`]), a client's key server for
//! `jwks_uri` ([`jwks_server`]) and the property tests' runner
//! configuration and shared strategies (`proptest_config`, `extreme_number`, `json_value`,
//! feature `proptest`).

mod net;
pub mod postgres;
mod threads;

pub use net::blackhole;
pub use threads::thread_policies;

#[cfg(feature = "proptest")]
mod fuzz;
#[cfg(feature = "proptest")]
pub use fuzz::{extreme_number, json_value, proptest_config};

#[cfg(feature = "server")]
mod app;
#[cfg(feature = "server")]
pub mod assertion;
#[cfg(feature = "server")]
mod authority;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
pub mod jwks_server;
#[cfg(feature = "server")]
pub mod pki;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "server")]
pub use app::{ISSUER, TestApp, basic};
#[cfg(feature = "server")]
pub use authority::{Authority, client, scope, secret, seed_client};
#[cfg(feature = "server")]
pub use http::{FORM, Reply, assert_oauth_error, client_for, jwt_header, jwt_payload, post_basic, split};
#[cfg(feature = "server")]
pub use server::{ServerBuilder, TestServer};
