//! Tessera client: get access tokens with the client credentials grant (RFC 6749 §4.4) and
//! keep them in a cache shared by every caller, refreshed ahead of expiry, one request at a
//! time. Adapters put the token on gRPC calls ([`BearerLayer`], a tower layer for tonic
//! channels) and on reqwest requests ([`AuthorizedClient`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_client::ClientError> {
//! use tessera_client::{ClientConfig, TokenSource};
//! use tessera_types::{ClientId, ClientSecret, Issuer, ScopeSet};
//! # fn typed() -> Result<(Issuer, ClientId, ClientSecret, ScopeSet), tessera_types::InvalidValue> {
//! let (authority, id, secret) =
//!     (Issuer::new("https://localhost:8443")?, ClientId::new("CC")?, ClientSecret::new("cc_secret")?);
//! # Ok((authority, id, secret, ScopeSet::parse("dataEventRecords")?)) }
//! # let (authority, id, secret, scope) = typed().unwrap();
//! let source = TokenSource::new(ClientConfig::new(authority, id, secret).scope(scope));
//! let token = source.token().await?; // cached, shared, refreshed at ~80% of its lifetime
//! # let _ = token; Ok(()) }
//! ```
//!
//! A client without a shared secret authenticates with a private key instead
//! (`private_key_jwt`, RFC 7523): [`ClientConfig::with_private_key`] and [`AssertionKey`];
//! or with a client certificate in the TLS handshake (mutual TLS, RFC 8705):
//! [`ClientConfig::with_client_certificate`] and [`ClientIdentity`].
//!
//! # Limits
//! Every call to the authority is bounded by [`AuthorityCalls::request_timeout`] (10 s; connect
//! 5 s), follows no redirect and must be `https` unless [`ClientConfig::allow_http`]. A failure
//! is remembered for [`AuthorityCalls::failure_memory`] (2 s): callers without a valid token get
//! it at once, callers with one keep using it, and the authority is asked again only after.
#![deny(missing_docs)]

mod assertion;
mod certificate;
mod config;
mod dpop;
mod error;
mod http_client;
mod layer;
mod source;
mod workload;

pub use assertion::{AssertionKey, JWT_BEARER_ASSERTION_TYPE, MAX_ASSERTION_LIFETIME};
pub use certificate::{ClientIdentity, IdentityError};
pub use config::{AuthMethod, ClientConfig, ClientCredentials};
pub use dpop::DpopKey;
pub use error::ClientError;
pub use http_client::AuthorizedClient;
pub use layer::{BearerLayer, BearerService};
pub use source::{Token, TokenSource};
pub use tessera_http::AuthorityCalls;
pub use tessera_jose::JoseError;
pub use workload::WorkloadToken;
