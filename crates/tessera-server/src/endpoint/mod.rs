//! HTTP endpoints: one module each.

pub mod discovery;
pub mod events;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;
mod token_param;

#[cfg(test)]
pub(crate) mod tests;
