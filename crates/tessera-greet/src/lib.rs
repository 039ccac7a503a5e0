//! The seed scenario's gRPC contract: `greet.Greeter/SayHello`.
#![allow(missing_docs, clippy::all)]

tonic::include_proto!("greet");

/// The full gRPC path of `SayHello`, as policies name it.
pub const SAY_HELLO: &str = "/greet.Greeter/SayHello";
