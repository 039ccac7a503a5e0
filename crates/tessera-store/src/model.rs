//! The records the store keeps: scopes, clients with hashed secrets and limits, signing keys,
//! reference tokens.

use std::collections::BTreeMap;

use tessera_types::rfc7517::JwkSet;
use tessera_types::rfc8705::{Confirmation, TlsClientRegistration};
use tessera_types::{
    ClientAuthMethod, ClientId, Jti, JwksUri, Kid, Permission, Resource, ScopeName, ScopeSet, SigningAlg, TokenFormat,
    UnixTime,
};

/// A scope as `tessera scope add` or the seed file registered it: a name clients may be
/// granted, and the resources (audiences) it grants access to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ScopeRecord {
    pub name: ScopeName,
    /// Default display name.
    pub display_name: Option<String>,
    /// Display names per culture, e.g. `fr-FR`.
    pub display_names: BTreeMap<String, String>,
    pub description: Option<String>,
    /// Resources (audiences) a token carrying this scope is meant for.
    pub resources: Vec<Resource>,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// One stored client secret: a hash, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// Identifier used to remove it (shown by `client show`).
    pub id: String,
    /// `sha256$...` or an argon2id PHC string.
    pub hash: String,
    /// When it was added.
    pub created_at: UnixTime,
    /// After this it no longer authenticates (`--expires-in`).
    pub expires_at: Option<UnixTime>,
    /// When a server last recorded its use (batched; minutes behind at most).
    pub last_used_at: Option<UnixTime>,
}

impl SecretRecord {
    /// A secret with no expiry, never used.
    pub fn new(id: String, hash: String, created_at: UnixTime) -> Self {
        Self { id, hash, created_at, expires_at: None, last_used_at: None }
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// A client as registered, with what decides whether and how it gets tokens: its hashed
/// secrets, permissions, token settings and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ClientRecord {
    pub client_id: ClientId,
    pub display_name: Option<String>,
    /// Active secrets (several during a rotation).
    pub secrets: Vec<SecretRecord>,
    /// Endpoints, grant types and scopes it may use.
    pub permissions: Vec<Permission>,
    /// Access token lifetime in seconds.
    pub access_token_lifetime: i64,
    /// Format of its access tokens.
    pub token_format: TokenFormat,
    /// Algorithm for its JWTs; the server default when absent.
    pub signing_alg: Option<SigningAlg>,
    /// A disabled client cannot authenticate.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: UnixTime,
    /// Its own issuance limits, over the server's.
    pub limits: ClientLimits,
    /// Tokens issued before this are inactive (`tessera token revoke --client`).
    pub tokens_not_before: Option<UnixTime>,
    /// Public keys for `private_key_jwt` (RFC 7523), validated on the way in: public members
    /// only, each with a `kid` and an `alg`.
    pub jwks: Option<JwkSet>,
    /// Where it publishes its public keys instead (RFC 7591 §2): fetched and cached by the
    /// server. Never together with `jwks`.
    pub jwks_uri: Option<JwksUri>,
    /// The one method it may authenticate with; `None`: any it has credentials for.
    pub auth_method: Option<ClientAuthMethod>,
    /// Its mutual-TLS registration (RFC 8705 §2).
    pub tls: TlsClientRegistration,
    /// Token requests must carry a DPoP proof (RFC 9449 §5): every token it gets is bound.
    pub require_dpop: bool,
}

/// A client's own issuance limits; `None` takes the server's default, `Some(0)` means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLimits {
    /// Sustained tokens per 1,000 seconds (thousandths of a token per second).
    pub issuance_rate_milli: Option<i64>,
    /// Bucket size.
    pub issuance_burst: Option<i64>,
    /// Most live reference tokens.
    pub max_live_tokens: Option<i64>,
}

/// Lifecycle of a signing key: next → active → retired → removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published ahead of signing (at most one per algorithm), so that verifiers caching the
    /// JWK Set hold it before the first token it signs.
    Next,
    /// Signs new tokens (one per algorithm) and is published.
    Active,
    /// No longer signs; still published so tokens it signed keep validating.
    Retired,
}

impl KeyStatus {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(Self::Next),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct KeyRecord {
    /// RFC 7638 thumbprint.
    pub kid: Kid,
    pub alg: SigningAlg,
    pub status: KeyStatus,
    /// PKCS#8 private key sealed with the key-encryption key.
    pub sealed_private_key: String,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    /// When it was generated.
    pub created_at: UnixTime,
    /// When it starts signing (next) or started (active, retired).
    pub activates_at: Option<UnixTime>,
    /// When it stopped signing.
    pub retired_at: Option<UnixTime>,
    /// When every token it signed has expired: from then on it may be removed.
    pub remove_after: Option<UnixTime>,
}

/// Changes to a client's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ClientUpdate {
    pub display_name: Option<String>,
    /// New access token lifetime, seconds.
    pub access_token_lifetime: Option<i64>,
    pub token_format: Option<TokenFormat>,
    pub signing_alg: Option<SigningAlg>,
    /// New permission set (replaces the old one).
    pub permissions: Option<Vec<Permission>>,
    /// New issuance rate override (`Some(None)`: back to the server default).
    pub issuance_rate_milli: Option<Option<i64>>,
    pub issuance_burst: Option<Option<i64>>,
    /// New live reference token cap override.
    pub max_live_tokens: Option<Option<i64>>,
    /// New key set (replaces the old one: rotation); `Some(None)` removes it. A new set
    /// removes the client's `jwks_uri`.
    pub jwks: Option<Option<JwkSet>>,
    /// New `jwks_uri`; `Some(None)` removes it. A new URI removes the client's key set.
    pub jwks_uri: Option<Option<JwksUri>>,
    /// New authentication method restriction; `Some(None)` lifts it.
    pub auth_method: Option<Option<ClientAuthMethod>>,
    /// New mutual-TLS registration (replaces the old one).
    pub tls: Option<TlsClientRegistration>,
    /// Whether token requests must carry a DPoP proof.
    pub require_dpop: Option<bool>,
}

/// A stored reference token: its hash and what introspection reports, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TokenRecord {
    /// What the store finds it by: the token's leading characters, time-ordered (see
    /// migration 0017), not enough to use it.
    pub handle: String,
    /// SHA-256 of the token, base64url.
    pub hash: String,
    pub jti: Jti,
    /// The client it was issued to (also `sub`).
    pub client_id: ClientId,
    /// Granted scopes; `None` when none were granted.
    pub scope: Option<ScopeSet>,
    pub audiences: Vec<Resource>,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// Revoked (RFC 7009).
    pub revoked: bool,
    /// What it is bound to (RFC 8705 §3).
    pub cnf: Option<Confirmation>,
    /// The federated workload that authenticated as the client (issue 15).
    pub workload: Option<tessera_types::rfc9068::Workload>,
}

/// A trusted external issuer of workload identities (issue 15).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TrustRecord {
    pub name: String,
    /// `kubernetes`, `spiffe`, `github-actions` or `oidc`.
    pub kind: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    /// A JWK Set (JSON) given inline; with neither this nor `jwks_uri`, discovery names the keys.
    pub jwks: Option<String>,
    pub ca_pem: Option<String>,
    /// The audience external tokens must carry; `None`: Tessera's issuer.
    pub audience: Option<String>,
    pub max_token_age: Option<i64>,
    pub max_lifetime: Option<i64>,
    /// Uses allowed per external token; `None`: unlimited within its lifetime.
    pub max_uses: Option<i64>,
    pub created_at: UnixTime,
}

/// A claim rule of a trust: its conditions (`CLAIM=PATTERN`), all of which must hold, map a
/// workload to `client_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TrustRuleRecord {
    pub trust: String,
    /// Position in evaluation order: ascending, the order rules were added.
    pub id: i64,
    pub client_id: ClientId,
    pub conditions: Vec<String>,
    pub created_at: UnixTime,
}
