//! Registry administration shared by the CLI and config-file seeding: the one place where
//! new scopes and clients are validated and turned into store records.

use std::collections::BTreeMap;

use tessera_store::{ClientLimits, ClientRecord, ScopeRecord, Store, StoreError};
use tessera_types::{
    ClientId, ClientSecret, Endpoint, GrantType, InvalidValue, Permission, Resource, ScopeName, SigningAlg,
    TokenFormat, UnixTime,
};

use crate::clock::Random;
use crate::config::{self, SeedClient, SeedScope};
use crate::secrets;

/// Why an administrative change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A value has the wrong shape.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// Refused for a reason stated.
    #[error("{0}")]
    Refused(String),
    /// The store failed or the name is taken.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A scope to register.
#[derive(Debug, Clone, Default)]
pub struct NewScope {
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Display names per culture (`fr-FR` => text).
    pub display_names: BTreeMap<String, String>,
    /// Description.
    pub description: Option<String>,
    /// Resources (audiences).
    pub resources: Vec<String>,
}

impl From<SeedScope> for NewScope {
    fn from(s: SeedScope) -> Self {
        Self {
            name: s.name,
            display_name: s.display_name,
            display_names: s.display_names,
            description: s.description,
            resources: s.resources,
        }
    }
}

/// Registers a scope.
pub async fn add_scope(store: &Store, new: NewScope, now: UnixTime) -> Result<ScopeRecord, AdminError> {
    let mut resources = Vec::new();
    for r in new.resources {
        let r = Resource::new(r)?;
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    for culture in new.display_names.keys() {
        if culture.is_empty() || !culture.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(AdminError::Refused(format!("culture {culture:?} is not a language tag such as fr-FR")));
        }
    }
    let record = ScopeRecord {
        name: ScopeName::new(new.name)?,
        display_name: new.display_name,
        display_names: new.display_names,
        description: new.description,
        resources,
        created_at: now,
    };
    store.add_scope(&record).await?;
    Ok(record)
}

/// A client to register. `Debug` redacts the secret.
#[derive(Clone, Default)]
pub struct NewClient {
    /// Client id.
    pub client_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// An imported secret; `None` generates one.
    pub secret: Option<String>,
    /// Scopes it may request (each must be registered).
    pub scopes: Vec<String>,
    /// Other permissions. When none names an endpoint or grant type, `ept:token`,
    /// `ept:revocation` and `gt:client_credentials` are added: what a client credentials
    /// client needs, including revoking its own tokens.
    pub permissions: Vec<String>,
    /// Lifetime of its access tokens, seconds.
    pub access_token_lifetime: Option<i64>,
    /// Algorithm for its JWTs.
    pub signing_alg: Option<String>,
    /// `jwt` (default) or `reference`.
    pub token_format: Option<String>,
    /// Accept an imported secret below the strength floor ([`secrets::check_strength`]),
    /// with a warning: for the published sample secrets of the seed scenario only.
    pub allow_weak_secret: bool,
    /// Its own issuance limits over the server's.
    pub limits: ClientLimits,
}

impl std::fmt::Debug for NewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            client_id,
            display_name,
            secret,
            scopes,
            permissions,
            access_token_lifetime,
            signing_alg,
            token_format,
            allow_weak_secret,
            limits,
        } = self;
        f.debug_struct("NewClient")
            .field("client_id", client_id)
            .field("display_name", display_name)
            .field("secret", &secret.as_ref().map(|_| "[redacted]"))
            .field("scopes", scopes)
            .field("permissions", permissions)
            .field("access_token_lifetime", access_token_lifetime)
            .field("signing_alg", signing_alg)
            .field("token_format", token_format)
            .field("allow_weak_secret", allow_weak_secret)
            .field("limits", limits)
            .finish()
    }
}

impl From<SeedClient> for NewClient {
    fn from(c: SeedClient) -> Self {
        Self {
            client_id: c.client_id,
            display_name: c.display_name,
            secret: c.secret,
            scopes: c.scopes,
            permissions: c.permissions,
            access_token_lifetime: c.access_token_lifetime,
            signing_alg: c.signing_alg,
            token_format: c.token_format,
            allow_weak_secret: c.allow_weak_secret,
            limits: ClientLimits {
                issuance_rate_milli: c.issuance_rate_per_second.map(|r| (r * 1000.0).round() as i64),
                issuance_burst: c.issuance_burst.map(i64::from),
                max_live_tokens: c.max_live_reference_tokens.map(|n| n.min(i64::MAX as u64) as i64),
            },
        }
    }
}

/// Registers a client. Returns the record and, when it was generated, the secret in clear:
/// the only time it is ever shown.
pub async fn add_client(
    store: &Store,
    new: NewClient,
    default_lifetime: i64,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(ClientRecord, Option<ClientSecret>), AdminError> {
    let client_id = ClientId::new(new.client_id)?;
    let mut permissions: Vec<Permission> = Vec::new();
    for p in &new.permissions {
        permissions.push(p.parse()?);
    }
    if !permissions.iter().any(|p| matches!(p, Permission::Endpoint(_) | Permission::GrantType(_))) {
        permissions.push(Permission::Endpoint(Endpoint::Token));
        permissions.push(Permission::Endpoint(Endpoint::Revocation));
        permissions.push(Permission::GrantType(GrantType::ClientCredentials));
    }
    for s in &new.scopes {
        let name = ScopeName::new(s.as_str())?;
        if store.get_scope(&name).await?.is_none() {
            return Err(AdminError::Refused(format!(
                "scope {name} is not registered; add it first with `tessera scope add`"
            )));
        }
        permissions.push(Permission::Scope(name));
    }
    permissions.sort();
    permissions.dedup();
    let lifetime = new.access_token_lifetime.unwrap_or(default_lifetime);
    config::validate_lifetime(lifetime).map_err(|e| AdminError::Refused(e.0))?;
    let signing_alg = new.signing_alg.map(|a| a.parse::<SigningAlg>()).transpose()?;
    let (secret, generated) = imported_or_generated(&client_id, new.secret, new.allow_weak_secret, rng)?;
    if let Some(rate) = new.limits.issuance_rate_milli.filter(|r| *r < 0) {
        return Err(AdminError::Refused(format!("issuance rate {rate} is negative")));
    }
    let record = ClientRecord {
        client_id,
        display_name: new.display_name,
        secrets: vec![secrets::record(&secret, generated, rng, now)],
        permissions,
        access_token_lifetime: lifetime,
        token_format: new.token_format.map(|f| f.parse::<TokenFormat>()).transpose()?.unwrap_or_default(),
        signing_alg,
        enabled: true,
        created_at: now,
        limits: new.limits,
        tokens_not_before: None,
    };
    store.add_client(&record).await?;
    Ok((record, generated.then_some(secret)))
}

/// Scopes and permissions to add to or withdraw from a client.
#[derive(Debug, Clone, Default)]
pub struct PermissionChanges {
    /// Scopes to allow (each must be registered).
    pub add_scopes: Vec<String>,
    /// Scopes to withdraw.
    pub remove_scopes: Vec<String>,
    /// Permissions to grant.
    pub add_permissions: Vec<String>,
    /// Permissions to withdraw.
    pub remove_permissions: Vec<String>,
}

/// The client's permission set after `changes`, or `None` when there are no changes.
pub async fn changed_permissions(
    store: &Store,
    client_id: &ClientId,
    changes: PermissionChanges,
) -> Result<Option<Vec<Permission>>, AdminError> {
    let PermissionChanges { add_scopes, remove_scopes, add_permissions, remove_permissions } = changes;
    if add_scopes.is_empty() && remove_scopes.is_empty() && add_permissions.is_empty() && remove_permissions.is_empty()
    {
        return Ok(None);
    }
    let client =
        store.get_client(client_id).await?.ok_or_else(|| AdminError::Refused(format!("no client {client_id}")))?;
    let mut permissions = client.permissions;
    for s in add_scopes {
        let name = ScopeName::new(s)?;
        if store.get_scope(&name).await?.is_none() {
            return Err(AdminError::Refused(format!(
                "scope {name} is not registered; add it first with `tessera scope add`"
            )));
        }
        permissions.push(Permission::Scope(name));
    }
    for p in add_permissions {
        permissions.push(p.parse()?);
    }
    let mut withdrawn = Vec::new();
    for s in remove_scopes {
        withdrawn.push(Permission::Scope(ScopeName::new(s)?));
    }
    for p in remove_permissions {
        withdrawn.push(p.parse::<Permission>()?);
    }
    permissions.retain(|p| !withdrawn.contains(p));
    permissions.sort();
    permissions.dedup();
    Ok(Some(permissions))
}

/// Adds a secret to an existing client (rotation). Returns its id and, when generated, the
/// secret in clear.
pub async fn add_secret(
    store: &Store,
    client_id: &str,
    secret: Option<String>,
    allow_weak_secret: bool,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(String, Option<ClientSecret>), AdminError> {
    let client_id = ClientId::new(client_id)?;
    let (secret, generated) = imported_or_generated(&client_id, secret, allow_weak_secret, rng)?;
    let record = secrets::record(&secret, generated, rng, now);
    if !store.add_secret(&client_id, &record).await? {
        return Err(AdminError::Refused(format!("no client {client_id}")));
    }
    Ok((record.id, generated.then_some(secret)))
}

/// The secret to store: the imported one if it is strong enough (or explicitly allowed to be
/// weak), else a generated one.
fn imported_or_generated(
    client_id: &ClientId,
    secret: Option<String>,
    allow_weak: bool,
    rng: &dyn Random,
) -> Result<(ClientSecret, bool), AdminError> {
    let Some(s) = secret else { return Ok((secrets::generate(rng), true)) };
    let secret = ClientSecret::new(s)?;
    if let Err(why) = secrets::check_strength(&secret) {
        if !allow_weak {
            return Err(AdminError::Refused(format!(
                "the secret for {client_id} is too weak: {why}; omit it to have a 256-bit secret generated"
            )));
        }
        tracing::warn!(%client_id, reason = %why, "weak imported secret accepted (allow_weak_secret): sample use only");
    }
    Ok((secret, false))
}

/// Creates the configured scopes and clients that are absent (idempotent: existing ones are
/// left as they are). Returns the generated secrets, to be shown once.
pub async fn seed(
    store: &Store,
    scopes: &[SeedScope],
    clients: &[SeedClient],
    default_lifetime: i64,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<Vec<(ClientId, ClientSecret)>, AdminError> {
    for s in scopes {
        match add_scope(store, s.clone().into(), now).await {
            Ok(_) => tracing::info!(scope = %s.name, "seeded scope"),
            Err(AdminError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    let mut generated = Vec::new();
    for c in clients {
        match add_client(store, c.clone().into(), default_lifetime, rng, now).await {
            Ok((record, secret)) => {
                tracing::info!(client_id = %record.client_id, "seeded client");
                if let Some(secret) = secret {
                    generated.push((record.client_id, secret));
                }
            }
            Err(AdminError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(generated)
}
