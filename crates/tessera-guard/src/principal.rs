//! The validated caller, handed to handlers (axum extractor, request extension).

use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_types::rfc8705::Confirmation;
use tessera_types::rfc9068::AccessTokenClaims;
use tessera_types::{ClientId, Jti, Kid, ScopeName, ScopeSet, UnixTime};

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
    /// The client the token was issued to (RFC 9068 §2.2 `client_id`).
    pub client_id: Option<ClientId>,
    /// `sub`: for the client credentials grant, the client again.
    pub subject: Option<String>,
    /// Granted scopes: `scope`, and `scp` as some issuers (Azure AD, Okta) write them.
    pub scopes: ScopeSet,
    /// `aud`: every audience the token names, this API's among them.
    pub audience: Vec<String>,
    /// The issuer, as its discovery document names it.
    pub issuer: String,
    /// `exp`: validations are cached no longer than this.
    pub expires_at: UnixTime,
    /// `jti`: what a revocation of this one token names.
    pub jti: Option<Jti>,
    /// `iat`: a revocation of all its client's tokens issued before some time covers it when
    /// this is earlier (or absent).
    pub issued_at: Option<UnixTime>,
    /// The key a JWT was signed under (`None` when introspected): removing that key from the
    /// authority refuses the token, cached or not.
    pub kid: Option<Kid>,
    /// `cnf` (RFC 7800 §3.1): what the token is bound to. Kept with cached validations, so
    /// that the binding is checked on every request (RFC 9449 §7.1, a fresh DPoP proof each).
    pub cnf: Option<Confirmation>,
    /// Claims (JWT) or introspection members Tessera has no field for, for applications with
    /// claims of their own.
    pub other_claims: Map<String, Value>,
}

impl Principal {
    /// Builds a principal from verified claims (JWT payload or introspection answer).
    pub(crate) fn new(issuer: String, claims: AccessTokenClaims, kid: Option<Kid>) -> Self {
        let scopes = claims.scopes();
        Self(Arc::new(PrincipalData {
            client_id: claims.client_id,
            subject: claims.sub,
            scopes,
            audience: claims.aud,
            issuer,
            expires_at: claims.exp,
            jti: claims.jti,
            issued_at: claims.iat,
            kid,
            cnf: claims.cnf,
            other_claims: claims.other,
        }))
    }

    /// Whether the principal holds `scope`.
    pub fn has_scope(&self, scope: &ScopeName) -> bool {
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
