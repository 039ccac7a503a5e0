//! Guard integration tests: apps behind the layer on real sockets, against a fake issuer
//! (to mint hostile tokens) and against the real Tessera server (both modes).

mod apps;
mod attacks;
mod dpop;
mod fake_issuer;
mod feed;
mod in_process;
mod real_server;
mod resilience;
