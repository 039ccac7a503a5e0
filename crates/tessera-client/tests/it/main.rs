//! Client integration tests over real sockets: a fake authority on 127.0.0.1 that can be down,
//! blackholed or redirecting (issue 10, part 6). One test binary, in modules as it grows.

mod resilience;
