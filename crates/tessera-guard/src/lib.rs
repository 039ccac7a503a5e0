//! Tessera guard: one tower [`GuardLayer`] that protects axum REST and tonic gRPC services
//! with bearer tokens (RFC 6750), validated locally as JWTs (RFC 9068, keys from discovery and
//! JWKS, cached) or by introspection (RFC 7662, cached), with scope policies per route or
//! gRPC method.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode, Policy};
//! let guard = Guard::new(GuardConfig::new("https://localhost:8443", "rs_dataEventRecordsApi", Mode::Jwt))?;
//! let layer = GuardLayer::new(guard)
//!     .public("/")
//!     .route("/greet.Greeter/SayHello", Policy::all_of(["dataEventRecords"]));
//! # let _ = layer; Ok(()) }
//! ```
#![deny(missing_docs)]

mod cache;
mod config;
mod error;
mod guard;
mod http;
mod introspect;
mod jwks;
mod layer;
mod policy;
mod principal;
mod shape;

pub use config::{ClientCredentials, GuardConfig, Mode, OpaqueTokens};
pub use error::GuardError;
pub use guard::Guard;
pub use layer::{GuardLayer, GuardService};
pub use policy::Policy;
pub use principal::{Principal, PrincipalData};
