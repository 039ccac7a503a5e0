//! Grants: one module per grant type.

pub mod client_credentials;
