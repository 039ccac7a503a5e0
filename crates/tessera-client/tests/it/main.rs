//! Client integration tests over real sockets: a fake authority on 127.0.0.1 that can be down,
//! blackholed or redirecting (issue 10, part 6), and the cache's refresh and retry rules
//! (issue 11). One test binary, in modules as it grows.

mod cache;
mod resilience;
