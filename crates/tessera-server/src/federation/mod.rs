//! Federated workload identity (issue 15): workloads that already hold a signed identity —
//! a Kubernetes projected service-account token, a SPIFFE JWT-SVID, a GitHub Actions OIDC
//! token — authenticate with it instead of a client secret. A *trust* names an external
//! issuer; its *rules* ([`rules`]) map the workloads' claims to the Tessera client whose
//! scopes and permissions they get.

pub mod rules;
pub mod trusts;
