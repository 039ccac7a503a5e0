//! Calling the authorization server from a service. The guard (discovery, JWKS, introspection)
//! and the client (discovery, token endpoint) talk to the same authority under the same safety
//! rules, written once here: the settings both configs embed ([`AuthorityCalls`]), an HTTP
//! client that follows no redirect and a request bounded by a total timeout
//! ([`AuthorityClient`]), the https rule ([`require_https`]), discovery with its issuer check
//! ([`discover`]) and a short memory of the last failure ([`FailureMemory`]).
//!
//! Errors here say what went wrong, not what it means: the guard fails closed on every one of
//! them (503 / `Unavailable`), the client retries some and reports the rest in its own enum, so
//! each maps them itself.
#![deny(missing_docs)]

mod call;
mod discovery;
mod memory;
mod settings;

pub use call::{AuthorityClient, NotHttps, SendError, basic_credentials, form_encode, require_https};
pub use discovery::{DiscoveryError, discover};
pub use memory::FailureMemory;
pub use settings::AuthorityCalls;
