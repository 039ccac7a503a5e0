//! Tessera guard: one tower [`GuardLayer`] that protects axum REST and tonic gRPC services
//! with bearer tokens (RFC 6750), validated locally as JWTs (RFC 9068, keys from discovery and
//! JWKS, cached) or by introspection (RFC 7662, cached), with scope policies per route or
//! gRPC method. DPoP-bound tokens (RFC 9449 §7) are taken with the `DPoP` scheme and a fresh
//! proof of their key on every request, and refused as bearer tokens (see
//! [`Guard::authenticate_dpop`] and [`GuardConfig::public_base_url`]). An authorization
//! server can guard its own endpoints with its token lookup in process ([`Mode::InProcess`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_guard::{Guard, GuardConfig, GuardLayer, Mode, Policy};
//! use tessera_types::{Issuer, Resource, ScopeSet};
//! let authority = Issuer::new("https://localhost:8443")?;
//! let guard = Guard::new(GuardConfig::new(authority, Resource::new("rs_dataEventRecordsApi")?, Mode::Jwt))?;
//! let layer = GuardLayer::new(guard)
//!     .public("/")
//!     .route("/greet.Greeter/SayHello", Policy::all_of(ScopeSet::parse("dataEventRecords")?));
//! # let _ = layer; Ok(()) }
//! ```
//!
//! # Limits
//! The guard fails closed (HTTP 503, gRPC `Unavailable`) rather than wait on the authority:
//! every call to it (discovery, JWKS, introspection) is bounded by
//! [`AuthorityCalls::request_timeout`] (10 s; connect 5 s), follows no redirect, and must be
//! `https` unless [`GuardConfig::allow_http`]. A failed call is remembered for
//! [`AuthorityCalls::failure_memory`] (2 s), during which requests needing that endpoint fail at
//! once. Only tokens that can be the authority's are introspected ([`OpaqueTokens`]), once per
//! token however many requests carry it at the same moment; inactive answers are cached apart
//! from active ones, and a full cache evicts the entry that expires soonest.
//!
//! # Revocations
//! With [`GuardConfig::follow_revocations`], a background task follows the authority's
//! revocation feed (RFC 8936 polling of RFC 8417 Security Event Tokens) and every token,
//! cached validations included, is checked against what it said: revoked tokens, disabled
//! clients, clients' `not_before` times, removed keys. How current the feed must be, and what
//! happens when it is not, is [`RevocationFeed::max_staleness`] and [`OnStale`].
#![deny(missing_docs)]

mod binding;
mod cache;
mod config;
mod error;
mod feed;
mod guard;
mod http;
mod introspect;
mod jwks;
mod layer;
mod metrics;
mod policy;
mod principal;
mod replay;
mod revocations;
mod shape;

pub use binding::ClientCertificate;
pub use config::{
    ClientCredentials, DpopNonces, GuardConfig, InProcess, InProcessAuthority, InProcessFuture, Mode, OnStale,
    OpaqueTokens, RevocationFeed,
};
pub use error::GuardError;
pub use feed::FeedStatus;
pub use guard::Guard;
pub use layer::{GuardLayer, GuardService};
pub use metrics::{GuardMetrics, REFUSAL_REASONS};
pub use policy::Policy;
pub use principal::{Principal, PrincipalData};
pub use tessera_http::AuthorityCalls;
