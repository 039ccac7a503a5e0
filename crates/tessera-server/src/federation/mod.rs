//! Federated workload identity (issue 15): workloads that already hold a signed identity —
//! a Kubernetes projected service-account token, a SPIFFE JWT-SVID, a GitHub Actions OIDC
//! token — authenticate with it instead of a client secret. A *trust* names an external
//! issuer; its *rules* ([`rules`]) map the workloads' claims to the Tessera client whose
//! scopes and permissions they get.

pub mod discovery;
pub mod kinds;
pub mod rules;
pub mod trusts;

use std::sync::Arc;

use tessera_jose::VerifyingKey;

use crate::client_keys::remote::TrustRoots;
use tessera_store::{TrustRecord, TrustRuleRecord};
use tessera_types::rfc7517::JwkSet;
use tessera_types::{ClientId, JwksUri};

/// A trust as a registry snapshot holds it: the record, its rules indexed, its inline keys
/// parsed once.
#[derive(Debug)]
pub struct Trusted {
    #[allow(missing_docs)]
    pub record: TrustRecord,
    /// Parsed from the record: the shape its tokens must have.
    pub kind: trusts::TrustKind,
    #[allow(missing_docs)]
    pub rules: rules::RuleSet,
    /// Keys given inline (`--jwks-file`).
    pub keys: Vec<VerifyingKey>,
    /// Where keys are fetched from otherwise.
    pub jwks_uri: Option<JwksUri>,
    /// The trust's own CA for the issuer's TLS (`--ca`), instead of the platform's anchors.
    pub roots: Option<Arc<TrustRoots>>,
    /// The id the trust's fetched keys and used tokens are kept under (`trust:NAME`). A
    /// client registered under that id would share nothing that matters: fetched keys are
    /// cached per id *and* URI, and used-token rows are keyed by a hash only this path makes.
    pub cache_id: ClientId,
}

impl Trusted {
    /// Parses what the store holds; a part that does not parse (edited by hand) fails closed:
    /// no keys, or no rule.
    pub fn new(record: TrustRecord, rules: &[TrustRuleRecord]) -> Option<Self> {
        let cache_id = ClientId::new(format!("trust:{}", record.name)).ok()?;
        let Some(kind) = trusts::TrustKind::parse(&record.kind) else {
            tracing::error!(trust = %record.name, kind = %record.kind, "stored trust has an unknown kind: not loaded");
            return None;
        };
        let keys = match &record.jwks {
            Some(text) => match serde_json::from_str::<JwkSet>(text) {
                Ok(set) => crate::client_keys::verifying_keys(&cache_id, &set),
                Err(e) => {
                    tracing::error!(trust = %record.name, error = %e, "stored trust keys do not parse");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let jwks_uri = record.jwks_uri.as_deref().and_then(|u| JwksUri::new(u).ok());
        let roots = match &record.ca_pem {
            Some(pem) => match TrustRoots::from_pem(format!("trust {}", record.name), pem.as_bytes()) {
                Ok(roots) => Some(Arc::new(roots)),
                Err(e) => {
                    // Not loaded rather than fetched under the platform's anchors.
                    tracing::error!(trust = %record.name, error = %e, "stored trust CA does not parse: not loaded");
                    return None;
                }
            },
            None => None,
        };
        Some(Self { kind, rules: trusts::rule_set(rules), keys, jwks_uri, roots, cache_id, record })
    }

    /// The issuer as compared with a token's `iss` (no trailing slash).
    pub fn issuer(&self) -> &str {
        self.record.issuer.trim_end_matches('/')
    }
}

/// Trusts by issuer.
pub(crate) type TrustsByIssuer = std::collections::HashMap<String, Arc<Trusted>>;
