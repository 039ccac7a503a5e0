//! Servers and HTTP clients for the binary's tests, from the shared test kit: the names the
//! other modules import.

pub use tessera_testkit::{FORM, TestServer, client_for, post_basic, split};
