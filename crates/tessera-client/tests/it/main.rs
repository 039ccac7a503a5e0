//! Client integration tests over real sockets: a fake authority on 127.0.0.1 that can be down,
//! blackholed or redirecting (issue 10, part 6), and the cache's refresh and retry rules
//! (issue 11), `private_key_jwt` client assertions (issue 13) and mutual-TLS client
//! certificates against the real server (RFC 8705). One test binary, in modules as it grows.

mod cache;
mod dpop;
mod mtls;
mod private_key_jwt;
mod resilience;

use tessera_client::ClientConfig;
use tessera_types::{ClientId, ClientSecret, Issuer};

/// Settings for client `CC` of the authority at `url` (https only until `allow_http`).
fn config(url: &str) -> ClientConfig {
    ClientConfig::new(Issuer::new(url).unwrap(), ClientId::new("CC").unwrap(), ClientSecret::new("secret").unwrap())
}
