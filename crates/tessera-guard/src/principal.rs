//! The validated caller, handed to handlers (axum extractor, request extension).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Who called: put in request extensions by the layer. axum handlers take it as an extractor;
/// tonic services read it from `Request::extensions()`. Cloning is one reference count: the
/// layer hands out the cached validation without copying it. Fields are read through
/// [`PrincipalData`].
#[derive(Debug, Clone, PartialEq)]
pub struct Principal(Arc<PrincipalData>);

impl std::ops::Deref for Principal {
    type Target = PrincipalData;
    fn deref(&self) -> &PrincipalData {
        &self.0
    }
}

/// What a validated token says.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalData {
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// `sub`.
    pub subject: Option<String>,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
    /// `aud`.
    pub audience: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// Every claim (JWT) or introspection member.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// Builds a principal from a claim set (JWT payload or introspection response).
    pub(crate) fn from_claims(
        issuer: String,
        audience: Vec<String>,
        expires_at: i64,
        claims: Map<String, Value>,
    ) -> Self {
        let s = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut scopes: BTreeSet<String> = BTreeSet::new();
        if let Some(scope) = s("scope") {
            scopes.extend(scope.split(' ').filter(|x| !x.is_empty()).map(str::to_owned));
        }
        // Some issuers (Azure AD, Okta) send `scp`, as a string or an array.
        match claims.get("scp") {
            Some(Value::String(v)) => scopes.extend(v.split(' ').filter(|x| !x.is_empty()).map(str::to_owned)),
            Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_owned)),
            _ => {}
        }
        Self(Arc::new(PrincipalData {
            client_id: s("client_id"),
            subject: s("sub"),
            scopes,
            audience,
            issuer,
            expires_at,
            claims,
        }))
    }

    /// Whether the principal holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for Principal {
    type Rejection = http::StatusCode;

    /// The principal the layer validated; 401 if the route is not behind the layer.
    async fn from_request_parts(parts: &mut http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or(http::StatusCode::UNAUTHORIZED)
    }
}
