//! Protocol vocabulary of Tessera: a type for every OAuth 2.0 value, and the wire
//! types of each RFC in a module of its own. No I/O lives here.
#![deny(missing_docs)]

mod alg;
mod auth_method;
pub mod clock;
mod error;
mod ids;
mod issuer;
mod jwks_uri;
mod permission;
pub mod rfc6749;
pub mod rfc6750;
pub mod rfc7009;
pub mod rfc7517;
pub mod rfc7523;
pub mod rfc7662;
pub mod rfc8414;
pub mod rfc8417;
pub mod rfc8693;
pub mod rfc8705;
pub mod rfc9068;
mod scope;
mod token;

pub use alg::SigningAlg;
pub use auth_method::ClientAuthMethod;
pub use error::ErrorCode;
pub use ids::{ClientId, ClientSecret, InvalidValue, Resource, UnixTime};
pub use issuer::Issuer;
pub use jwks_uri::JwksUri;
pub use permission::{Endpoint, GrantType, JWT_BEARER_GRANT, Permission, TokenFormat};
pub use scope::{ScopeName, ScopeSet};
pub use token::{AccessToken, Jti, Kid};
