//! The endpoints' protocol rules (RFC 6749, 7662, 7009, 8414, 7517, 9068), each test named
//! after its rule, run against `router(state)` as a tower service: no socket, no TLS, no
//! registry poller, and a manual clock for lifetimes. What needs sockets is in `limits`,
//! `flood` and the binary crate's tests.

mod discovery;
mod introspection;
mod jwt;
mod registry;
mod revocation;
mod token_endpoint;
