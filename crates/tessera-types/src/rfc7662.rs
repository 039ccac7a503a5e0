//! RFC 7662 token introspection response.

use serde::{Deserialize, Serialize};

use crate::rfc9068::Audience;
use crate::{ClientId, Jti, UnixTime};

/// §2.2 response; each field is the member of the same name. An inactive token is
/// `{"active": false}` and nothing else: every other member is skipped when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<ClientId>,
    /// Subject (the client, for client credentials).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exp: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iat: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nbf: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<Jti>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_type: Option<String>,
    /// RFC 8705 §3.2: the certificate a bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<crate::rfc8705::Confirmation>,
    /// RFC 8693 §4.1: the delegation chain of an exchanged token (§4.4 allows it here).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<crate::rfc8693::Actor>,
    /// Tessera's `workload` claim: the federated workload behind the client.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workload: Option<crate::rfc9068::Workload>,
}

impl IntrospectionResponse {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self::default()
    }
}
