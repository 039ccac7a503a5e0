//! Integration tests of what needs real sockets and processes: the CLI, TLS/ALPN, restarts and
//! durability, PostgreSQL, several instances, abuse controls over sockets. The endpoints'
//! protocol rules are tested on the router in tessera-server's own tests. One test binary,
//! organised in modules (one link, not one per file).

mod abuse;
mod admin_api;
mod audit;
mod cli;
mod cli_docs;
mod cli_safety;
mod declarative;
mod dpop;
mod durability;
mod events;
mod federation;
mod harness;
mod jwks_uri;
mod mtls;
mod ops;
mod postgres;
mod private_key_jwt;
mod pruning;
mod registry;
mod rotation;
mod secret_lifecycle;
mod tls;
mod token_exchange;
mod trust;
