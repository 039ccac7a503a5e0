//! HTTP endpoints: one module each.

pub mod discovery;
pub mod jwks;
pub mod token;
