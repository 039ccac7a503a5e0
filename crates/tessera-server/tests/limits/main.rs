//! The attacks of "safe in the open", each against the real server over real sockets, and the
//! bound that stops it.

mod authentication;
mod connections;
mod harness;
mod issuance;
mod storage;
