//! Integration tests: the real server on an ephemeral port over TLS, driven by a real HTTP
//! client. One test binary, organised in modules (one link, not one per file).

mod cli;
mod cli_safety;
mod discovery;
mod durability;
mod harness;
mod introspection;
mod jwt;
mod postgres;
mod registry;
mod revocation;
mod token_endpoint;
