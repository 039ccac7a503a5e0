//! HTTP endpoints: one module each.

mod common;
pub mod discovery;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;
