//! The seed scenario in Rust: the OpenIddict/IdentityServer articles' gRPC Greeter (scope
//! `dataEventRecords`), REST API (audience `api1`), console client and background worker,
//! each a function the `tessera demo` command and the tests call.
#![deny(missing_docs)]

mod apis;
mod clients;
mod dpop;
mod federated;
mod scenario;

pub use apis::{Service, greeter, weather_api};
pub use clients::{
    DemoError, call_greeter, greet, greet_presenting, http_trusting, tls_channel, tls_channel_presenting, trusted_ca,
    worker,
};
pub use dpop::{Answer, DPOP_CLIENT, Presenting, greeter_with_token, rest_with_token, token_jkt};
pub use federated::{CLUSTER_ISSUER, FEDERATED_CLIENT, SERVICE_ACCOUNT};
pub use scenario::{
    MTLS_CLIENT, PRIVATE_KEY_JWT_CLIENT, demo, demo_reporting, sample_certificate, sample_certificate_pem, sample_key,
    sample_secret,
};
