//! `/admin/clients`: `tessera client add|list|show|update|remove|enable|disable` and
//! `client secret add|remove`. A generated secret is in the answer that created it, once;
//! nothing else ever carries a secret or its hash.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_store::{ClientRecord, ClientUpdate};
use tessera_types::{
    ClientAuthMethod, ClientId, ClientSecret, JwksUri, Permission, ScopeName, SigningAlg, TokenFormat,
};

use super::problem::Problem;
use super::request::{Admin, Body, OptionalBody, Segments};
use super::{segment, views};
use crate::admin::{self, ClientSpec, PermissionChanges, parsed, secret};

fn client_id(text: &str) -> Result<ClientId, Problem> {
    ClientId::new(text).map_err(|e| Problem::Invalid(e.to_string()))
}

fn no_client(id: &ClientId) -> Problem {
    Problem::NotFound(format!("no client {id}"))
}

async fn load(admin: &Admin, id: &ClientId) -> Result<ClientRecord, Problem> {
    admin.store().get_client(id).await?.ok_or_else(|| no_client(id))
}

/// RFC 6749 §5.1 as for any answer carrying a credential: not cached anywhere.
fn with_secret(status: StatusCode, location: String, body: Value) -> Response {
    let mut r = (status, [(header::LOCATION, location)], Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub(super) async fn list(admin: Admin) -> Result<Response, Problem> {
    let all: Vec<Value> = admin.store().list_clients().await?.iter().map(|c| views::client(c, admin.now())).collect();
    Ok(Json(json!({ "clients": all })).into_response())
}

/// The seed file's `[[clients]]` entry as JSON. The server reads no file for the caller:
/// `jwks` and `tls_client_certs` come inline.
pub(super) async fn add(admin: Admin, Body(spec): Body<ClientSpec>) -> Result<Response, Problem> {
    if spec.jwks_file.is_some() || !spec.tls_client_cert_files.is_empty() {
        return Err(Problem::Invalid(
            "jwks_file and tls_client_cert_files name files on the server; send jwks and tls_client_certs inline"
                .into(),
        ));
    }
    let s = &admin.state.0;
    let (record, generated) =
        admin::add_client(admin.store(), spec, s.default_lifetime, &s.key_bounds, admin.rng(), admin.now()).await?;
    tracing::info!(actor = %admin.actor, client_id = %record.client_id, "admin API: added client");
    admin.state.reload().await;
    let mut body = json!({ "client": views::client(&record, admin.now()) });
    if let Some(secret) = generated {
        body["client_secret"] = secret.expose().into();
    }
    Ok(with_secret(StatusCode::CREATED, format!("/admin/clients/{}", segment(record.client_id.as_str())), body))
}

pub(super) async fn show(admin: Admin, Segments(id): Segments<String>) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    Ok(Json(views::client(&load(&admin, &id).await?, admin.now())).into_response())
}

/// A limit override: a number, `off` (no limit) or `default` (the server's `[limits]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Limit {
    Number(f64),
    Word(LimitWord),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LimitWord {
    Off,
    Default,
}

impl Limit {
    /// As the store keeps it, `scale` per unit: `Some(None)` back to the default.
    fn stored(self, scale: f64, what: &str) -> Result<Option<i64>, Problem> {
        match self {
            Self::Word(LimitWord::Default) => Ok(None),
            Self::Word(LimitWord::Off) => Ok(Some(0)),
            Self::Number(n) if n.is_finite() && n >= 0.0 => Ok(Some((n * scale).round() as i64)),
            Self::Number(n) => Err(Problem::Invalid(format!("{what} {n} is not a non-negative number"))),
        }
    }
}

/// What `PATCH /admin/clients/{client_id}` may change; absent members stay as they are.
/// `tessera client update`'s options, and `enabled` for `client enable|disable`.
/// Mutual-TLS registrations are changed with the CLI only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClientPatch {
    display_name: Option<String>,
    access_token_lifetime: Option<i64>,
    #[serde(default, deserialize_with = "parsed")]
    token_format: Option<TokenFormat>,
    #[serde(default, deserialize_with = "parsed")]
    signing_alg: Option<SigningAlg>,
    enabled: Option<bool>,
    require_dpop: Option<bool>,
    #[serde(default)]
    add_scopes: Vec<ScopeName>,
    #[serde(default)]
    remove_scopes: Vec<ScopeName>,
    #[serde(default)]
    add_permissions: Vec<Permission>,
    #[serde(default)]
    remove_permissions: Vec<Permission>,
    /// A new JWK Set (key rotation); replaces a `jwks_uri`.
    jwks: Option<Value>,
    /// A new `jwks_uri`; replaces registered keys.
    jwks_uri: Option<JwksUri>,
    /// One method, or `any` to lift the restriction.
    token_endpoint_auth_method: Option<String>,
    issuance_rate_per_second: Option<Limit>,
    issuance_burst: Option<Limit>,
    max_live_reference_tokens: Option<Limit>,
}

pub(super) async fn update(
    admin: Admin,
    Segments(id): Segments<String>,
    Body(patch): Body<ClientPatch>,
) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    load(&admin, &id).await?;
    let s = &admin.state.0;
    let store = admin.store();
    if let Some(l) = patch.access_token_lifetime {
        crate::config::validate_lifetime(l).map_err(|e| Problem::Invalid(e.0))?;
    }
    if patch.jwks.is_some() && patch.jwks_uri.is_some() {
        return Err(Problem::Invalid("jwks and jwks_uri exclude each other (RFC 7591 section 2)".into()));
    }
    let jwks = match patch.jwks {
        Some(doc) => Some(Some(crate::client_keys::from_value(&id, doc, &s.key_bounds)?)),
        None => None,
    };
    let jwks_uri = match patch.jwks_uri {
        Some(uri) => {
            crate::client_keys::remote::url(&uri).map_err(|e| Problem::Invalid(format!("jwks_uri {uri}: {e}")))?;
            Some(Some(uri))
        }
        None => None,
    };
    let auth_method = match patch.token_endpoint_auth_method.as_deref() {
        None => None,
        Some("any") => Some(None),
        Some(m) => Some(Some(
            m.parse::<ClientAuthMethod>().map_err(|e| Problem::Invalid(format!("token_endpoint_auth_method: {e}")))?,
        )),
    };
    let limit = |l: Option<Limit>, scale, what| l.map(|l| l.stored(scale, what)).transpose();
    let changes = PermissionChanges {
        add_scopes: patch.add_scopes,
        remove_scopes: patch.remove_scopes,
        add_permissions: patch.add_permissions,
        remove_permissions: patch.remove_permissions,
    };
    let update = ClientUpdate {
        display_name: patch.display_name,
        access_token_lifetime: patch.access_token_lifetime,
        token_format: patch.token_format,
        signing_alg: patch.signing_alg,
        permissions: admin::changed_permissions(store, &id, changes).await?,
        issuance_rate_milli: limit(patch.issuance_rate_per_second, 1000.0, "issuance_rate_per_second")?,
        issuance_burst: limit(patch.issuance_burst, 1.0, "issuance_burst")?,
        max_live_tokens: limit(patch.max_live_reference_tokens, 1.0, "max_live_reference_tokens")?,
        jwks,
        jwks_uri,
        auth_method,
        tls: None,
        require_dpop: patch.require_dpop,
    };
    if !store.update_client(&id, &update).await? {
        return Err(no_client(&id));
    }
    if let Some(enabled) = patch.enabled {
        // Told to the revocation feed when it changes (the store records the event).
        store.set_client_enabled(&id, enabled, admin.now()).await?;
    }
    tracing::info!(actor = %admin.actor, client_id = %id, "admin API: updated client");
    admin.state.reload().await;
    Ok(Json(views::client(&load(&admin, &id).await?, admin.now())).into_response())
}

pub(super) async fn remove(admin: Admin, Segments(id): Segments<String>) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    if !admin.store().remove_client(&id, admin.now()).await? {
        return Err(no_client(&id));
    }
    tracing::info!(actor = %admin.actor, client_id = %id, "admin API: removed client");
    admin.state.reload().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A secret to add: imported, or (without `secret`) generated and returned once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSecret {
    #[serde(default, deserialize_with = "secret")]
    secret: Option<ClientSecret>,
    /// Accept an imported secret below the strength floor (sample secrets only).
    #[serde(default)]
    allow_weak_secret: bool,
    /// Seconds from now after which it stops authenticating; absent: never.
    expires_in: Option<i64>,
}

pub(super) async fn add_secret(
    admin: Admin,
    Segments(id): Segments<String>,
    OptionalBody(new): OptionalBody<NewSecret>,
) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    load(&admin, &id).await?;
    // One reading of the clock: the answer's expiry is the stored one, even across a second.
    let now = admin.now();
    let (secret_id, generated) =
        admin::add_secret(admin.store(), &id, new.secret, new.allow_weak_secret, new.expires_in, admin.rng(), now)
            .await?;
    tracing::info!(actor = %admin.actor, client_id = %id, %secret_id, "admin API: added client secret");
    admin.state.reload().await;
    let mut body = json!({ "id": secret_id, "expires_at": new.expires_in.map(|s| now.plus(s)) });
    if let Some(secret) = generated {
        body["client_secret"] = secret.expose().into();
    }
    let location = format!("/admin/clients/{}/secrets/{}", segment(id.as_str()), segment(&secret_id));
    Ok(with_secret(StatusCode::CREATED, location, body))
}

/// When a secret stops authenticating (`tessera client secret expire`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretExpiry {
    /// Seconds from now; at least 1 (to end it now, remove it).
    expires_in: i64,
}

pub(super) async fn expire_secret(
    admin: Admin,
    Segments((id, secret_id)): Segments<(String, String)>,
    Body(expiry): Body<SecretExpiry>,
) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    load(&admin, &id).await?;
    if expiry.expires_in <= 0 {
        return Err(Problem::Invalid("expires_in must be in the future; to end a secret now, remove it".into()));
    }
    let at = admin.now().plus(expiry.expires_in);
    if !admin.store().set_secret_expiry(&id, &secret_id, Some(at)).await? {
        return Err(Problem::NotFound(format!("client {id} has no secret {secret_id}")));
    }
    tracing::info!(actor = %admin.actor, client_id = %id, %secret_id, expires_at = at.0, "admin API: secret expiry set");
    admin.state.reload().await;
    Ok(Json(json!({ "id": secret_id, "expires_at": at })).into_response())
}

pub(super) async fn remove_secret(
    admin: Admin,
    Segments((id, secret_id)): Segments<(String, String)>,
) -> Result<Response, Problem> {
    let id = client_id(&id)?;
    load(&admin, &id).await?;
    if !admin.store().remove_secret(&id, &secret_id).await? {
        return Err(Problem::NotFound(format!("client {id} has no secret {secret_id}")));
    }
    tracing::info!(actor = %admin.actor, client_id = %id, %secret_id, "admin API: removed client secret");
    admin.state.reload().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
