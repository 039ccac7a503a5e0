//! Registry administration shared by the CLI and config-file seeding: the one place where
//! new scopes and clients are validated and turned into store records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tessera_store::{ClientLimits, ClientRecord, ScopeRecord, SecretRecord, Store, StoreError};
use tessera_types::rfc7517::JwkSet;
use tessera_types::rfc8705::{TlsClientRegistration, TlsClientSubject};
use tessera_types::{
    ClientAuthMethod, ClientId, ClientSecret, Endpoint, GrantType, InvalidValue, JwksUri, Permission, Resource,
    ScopeName, SigningAlg, TokenFormat, UnixTime,
};

use crate::client_keys::{self, KeyBounds};
use crate::clock::Random;
use crate::config;
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

/// A scope to register: a `[[scopes]]` entry of the seed file, or `tessera scope add`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct ScopeSpec {
    /// Scope name (RFC 6749 §3.3 scope-token).
    #[cfg_attr(feature = "clap", arg(value_parser = |s: &str| ScopeName::new(s)))]
    pub name: ScopeName,
    /// Resource (audience) granted by this scope; repeatable.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long = "resource", value_name = "RESOURCE", value_parser = |s: &str| Resource::new(s)))]
    pub resources: Vec<Resource>,
    /// Display name.
    #[cfg_attr(feature = "clap", arg(long))]
    pub display_name: Option<String>,
    /// Display names per culture, `fr-FR` => text (on the command line: `--display-name-for`).
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub display_names: BTreeMap<String, String>,
    /// Description.
    #[cfg_attr(feature = "clap", arg(long))]
    pub description: Option<String>,
}

impl ScopeSpec {
    /// A scope with this name and nothing else.
    pub fn new(name: ScopeName) -> Self {
        Self { name, resources: Vec::new(), display_name: None, display_names: BTreeMap::new(), description: None }
    }

    /// What can be checked without the store.
    pub fn validate(&self) -> Result<(), AdminError> {
        for culture in self.display_names.keys() {
            if culture.is_empty() || !culture.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(AdminError::Refused(format!(
                    "scope {}: culture {culture:?} is not a language tag such as fr-FR",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

/// Registers a scope; a name already registered is refused, not overwritten.
pub async fn add_scope(store: &Store, new: ScopeSpec, now: UnixTime) -> Result<ScopeRecord, AdminError> {
    new.validate()?;
    // A built-in admin scope exists already, everywhere: registering it could only make its
    // name mean something else in the store than at issuance.
    if crate::admin_api::builtin::scope(&new.name).is_some() {
        return Err(AdminError::Store(StoreError::Conflict(format!("scope {} (built in)", new.name))));
    }
    let mut resources = Vec::new();
    for r in new.resources {
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    let record = ScopeRecord {
        name: new.name,
        display_name: new.display_name,
        display_names: new.display_names,
        description: new.description,
        resources,
        created_at: now,
    };
    store.add_scope(&record).await?;
    Ok(record)
}

/// A client to register: a `[[clients]]` entry of the seed file, or `tessera client add`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Client id.
    #[cfg_attr(feature = "clap", arg(value_parser = |s: &str| ClientId::new(s)))]
    pub client_id: ClientId,
    /// An imported secret (hashed with argon2id); `None` generates a 256-bit one, shown once.
    /// On the command line: --secret-file or --secret.
    #[serde(default, deserialize_with = "secret")]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub secret: Option<ClientSecret>,
    /// Display name.
    #[cfg_attr(feature = "clap", arg(long))]
    pub display_name: Option<String>,
    /// Scope the client may request (must be registered); repeatable.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long = "scope", value_name = "SCOPE", value_parser = |s: &str| ScopeName::new(s)))]
    pub scopes: Vec<ScopeName>,
    /// Permission: ept:token, ept:introspection, ept:revocation, gt:client_credentials,
    /// scp:SCOPE; repeatable. With none naming an endpoint or grant type, ept:token,
    /// ept:revocation and gt:client_credentials are implied: what a client credentials client
    /// needs, including revoking its own tokens.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long = "permission", value_name = "PERMISSION"))]
    pub permissions: Vec<Permission>,
    /// Access token lifetime in seconds (default: the server's, 3600).
    #[cfg_attr(feature = "clap", arg(long = "lifetime", value_name = "SECONDS"))]
    pub access_token_lifetime: Option<i64>,
    /// Signing algorithm of its tokens: ES256, RS256, PS256 or EdDSA (default: the server's
    /// first).
    #[serde(default, deserialize_with = "parsed")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub signing_alg: Option<SigningAlg>,
    /// Access token format: jwt (default) or reference (opaque, introspected, revocable).
    #[serde(default, deserialize_with = "parsed")]
    #[cfg_attr(feature = "clap", arg(long))]
    pub token_format: Option<TokenFormat>,
    /// Accept an imported secret below the strength floor (16+ characters, 64+ bits), with a
    /// warning: for published sample secrets (the seed scenario's) only.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long))]
    pub allow_weak_secret: bool,
    /// Tokens per second this client may obtain (over limits.issuance_rate_per_second;
    /// 0 or `off`: no limit).
    #[cfg_attr(feature = "clap", arg(long = "issuance-rate", value_name = "PER_SECOND|off", value_parser = rate))]
    pub issuance_rate_per_second: Option<f64>,
    /// Tokens it may obtain at once above that rate (over limits.issuance_burst).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub issuance_burst: Option<u64>,
    /// Live reference tokens it may hold (over limits.max_live_reference_tokens; 0 or `off`:
    /// no cap).
    #[cfg_attr(feature = "clap", arg(long = "max-live-tokens", value_name = "N|off", value_parser = count))]
    pub max_live_reference_tokens: Option<u64>,
    /// Public keys for private_key_jwt (RFC 7523), inline in the seed file:
    /// `jwks = { keys = [...] }`. Public members only.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub jwks: Option<serde_json::Value>,
    /// A JWK Set file of public keys for private_key_jwt (within limits.max_client_keys and
    /// limits.max_client_jwks_bytes). A client given keys and no secret gets no secret.
    #[cfg_attr(feature = "clap", arg(long = "jwks", value_name = "FILE"))]
    pub jwks_file: Option<PathBuf>,
    /// Where the client publishes its public keys for private_key_jwt (RFC 7591 section 2),
    /// instead of registering them: an https URL, fetched when needed and cached. Not
    /// together with jwks.
    #[cfg_attr(feature = "clap", arg(long = "jwks-uri", value_name = "URL", value_parser = |s: &str| JwksUri::new(s)))]
    pub jwks_uri: Option<JwksUri>,
    /// The one way it may authenticate: client_secret_basic, client_secret_post,
    /// private_key_jwt, tls_client_auth or self_signed_tls_client_auth (default: any it has
    /// credentials for).
    #[serde(default, deserialize_with = "parsed")]
    #[cfg_attr(feature = "clap", arg(long, value_name = "METHOD"))]
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,

    /// A PEM certificate the client presents in the TLS handshake
    /// (self_signed_tls_client_auth, RFC 8705 section 2.2); repeatable, for rotation. Only
    /// its SHA-256 thumbprint is kept.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long = "tls-client-cert", value_name = "FILE"))]
    pub tls_client_cert_files: Vec<PathBuf>,
    /// The same inline in the seed file, PEM text: `tls_client_certs =
    /// ["-----BEGIN CERTIFICATE-----\n..."]`, so that a seed file works from any working
    /// directory and can be built into a binary (as `jwks` beside `jwks_file`). The same
    /// checks as the files: certificates only, no private key, within
    /// limits.max_client_jwks_bytes each; only the thumbprints are kept.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub tls_client_certs: Vec<String>,
    /// The same as `x5t#S256` thumbprints (RFC 8705 §3.1), in a registry file: what `tessera
    /// export` writes, since only thumbprints are stored.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(skip))]
    pub tls_client_cert_thumbprints: Vec<tessera_types::rfc8705::CertificateThumbprint>,
    /// tls_client_auth (RFC 8705 section 2.1): the subject DN, RFC 4514 order (as `openssl
    /// x509 -noout -subject -nameopt RFC2253` prints it), of a certificate issued by a CA in
    /// mtls_client_ca_file.
    #[cfg_attr(feature = "clap", arg(long = "tls-client-auth-subject-dn", value_name = "DN"))]
    pub tls_client_auth_subject_dn: Option<String>,
    /// tls_client_auth: a DNS name the certificate's subjectAltName must hold.
    #[cfg_attr(feature = "clap", arg(long = "tls-client-auth-san-dns", value_name = "NAME"))]
    pub tls_client_auth_san_dns: Option<String>,
    /// tls_client_auth: a URI the certificate's subjectAltName must hold (a SPIFFE ID, say).
    #[cfg_attr(feature = "clap", arg(long = "tls-client-auth-san-uri", value_name = "URI"))]
    pub tls_client_auth_san_uri: Option<String>,
    /// Refuse its token requests without a DPoP proof (RFC 9449): every token it gets is
    /// bound to its key.
    #[serde(default)]
    #[cfg_attr(feature = "clap", arg(long))]
    pub require_dpop: bool,
}

/// How a client authenticates by mutual TLS (RFC 8705 §2), as given to `client add`,
/// `client update` or the seed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct TlsClientSpec {
    pub cert_files: Vec<PathBuf>,
    /// Certificates inline, PEM text (the seed file's `tls_client_certs`).
    pub certs: Vec<String>,
    /// Certificates by thumbprint (a registry file's `tls_client_cert_thumbprints`).
    pub thumbprints: Vec<tessera_types::rfc8705::CertificateThumbprint>,
    pub subject_dn: Option<String>,
    pub san_dns: Option<String>,
    pub san_uri: Option<String>,
}

impl TlsClientSpec {
    /// Whether any of it was given.
    pub fn is_given(&self) -> bool {
        !self.cert_files.is_empty()
            || !self.certs.is_empty()
            || !self.thumbprints.is_empty()
            || self.subject_dn.is_some()
            || self.san_dns.is_some()
            || self.san_uri.is_some()
    }

    /// The registration: certificates read (within `bounds`, as public keys are) and reduced
    /// to thumbprints, and at most one subject (RFC 8705 §2.1.2: "exactly one").
    pub fn registration(&self, client_id: &ClientId, bounds: &KeyBounds) -> Result<TlsClientRegistration, AdminError> {
        let refused = |why: String| AdminError::Refused(format!("client {client_id}: {why}"));
        let subjects = [
            self.subject_dn.clone().map(TlsClientSubject::SubjectDn),
            self.san_dns.clone().map(TlsClientSubject::SanDns),
            self.san_uri.clone().map(TlsClientSubject::SanUri),
        ];
        let mut given = subjects.into_iter().flatten();
        let subject = given.next();
        if given.next().is_some() {
            return Err(refused(
                "give one of tls_client_auth_subject_dn, _san_dns, _san_uri (RFC 8705 section 2.1.2)".into(),
            ));
        }
        match &subject {
            Some(TlsClientSubject::SubjectDn(dn)) if crate::certificate::dn::normalize(dn).is_none() => {
                return Err(refused(format!("tls_client_auth_subject_dn {dn:?} is not an RFC 4514 DN")));
            }
            Some(s) if s.value().trim().is_empty() => return Err(refused(format!("{} is empty", s.metadata_name()))),
            _ => {}
        }
        let mut certificates = Vec::new();
        for path in &self.cert_files {
            let pem = read_bounded(path, bounds.max_bytes).map_err(|e| refused(format!("{}: {e}", path.display())))?;
            let found = crate::certificate::registered_thumbprints(&pem)
                .map_err(|e| refused(format!("{}: {e}", path.display())))?;
            certificates.extend(found);
        }
        for (i, pem) in self.certs.iter().enumerate() {
            let what = format!("tls_client_certs[{i}]");
            // Bounded as a file is, before it is parsed.
            if pem.len() > bounds.max_bytes {
                return Err(refused(format!(
                    "{what}: larger than {} bytes (limits.max_client_jwks_bytes)",
                    bounds.max_bytes
                )));
            }
            let found = crate::certificate::registered_thumbprints(pem.as_bytes())
                .map_err(|e| refused(format!("{what}: {e}")))?;
            certificates.extend(found);
        }
        certificates.extend(self.thumbprints.iter().cloned());
        // The same certificate given twice (a file and inline, say) is registered once.
        let mut unique = Vec::with_capacity(certificates.len());
        for c in certificates {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        let certificates = unique;
        if certificates.len() > bounds.max_keys {
            return Err(refused(format!(
                "{} certificates; at most {} (limits.max_client_keys)",
                certificates.len(),
                bounds.max_keys
            )));
        }
        Ok(TlsClientRegistration { certificates, subject })
    }
}

/// A file read whole, refused past `max` bytes before it is read.
fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() > max {
        return Err(format!("larger than {max} bytes (limits.max_client_jwks_bytes)"));
    }
    Ok(bytes)
}

impl ClientSpec {
    /// A client with this id and every other setting left to its default.
    pub fn new(client_id: ClientId) -> Self {
        Self {
            client_id,
            secret: None,
            display_name: None,
            scopes: Vec::new(),
            permissions: Vec::new(),
            access_token_lifetime: None,
            signing_alg: None,
            token_format: None,
            allow_weak_secret: false,
            issuance_rate_per_second: None,
            issuance_burst: None,
            max_live_reference_tokens: None,
            jwks: None,
            jwks_file: None,
            jwks_uri: None,
            token_endpoint_auth_method: None,
            tls_client_cert_files: Vec::new(),
            tls_client_certs: Vec::new(),
            tls_client_cert_thumbprints: Vec::new(),
            tls_client_auth_subject_dn: None,
            tls_client_auth_san_dns: None,
            tls_client_auth_san_uri: None,
            require_dpop: false,
        }
    }

    /// Its mutual-TLS registration, as given.
    pub fn tls(&self) -> TlsClientSpec {
        TlsClientSpec {
            cert_files: self.tls_client_cert_files.clone(),
            certs: self.tls_client_certs.clone(),
            thumbprints: self.tls_client_cert_thumbprints.clone(),
            subject_dn: self.tls_client_auth_subject_dn.clone(),
            san_dns: self.tls_client_auth_san_dns.clone(),
            san_uri: self.tls_client_auth_san_uri.clone(),
        }
    }

    /// What can be checked without the store: lifetime, limits, and the strength of an
    /// imported secret. The seed file's clients are checked before the store is opened.
    pub fn validate(&self, bounds: &KeyBounds) -> Result<(), AdminError> {
        let id = &self.client_id;
        if let Some(l) = self.access_token_lifetime {
            config::validate_lifetime(l).map_err(|e| AdminError::Refused(format!("client {id}: {}", e.0)))?;
        }
        if let Some(rate) = self.issuance_rate_per_second.filter(|r| !r.is_finite() || *r < 0.0) {
            return Err(AdminError::Refused(format!("client {id}: issuance rate {rate} is not a non-negative number")));
        }
        if let Some(secret) = &self.secret {
            weakness(id, secret, self.allow_weak_secret)?;
        }
        self.keys(bounds)?;
        self.tls().registration(id, bounds)?;
        Ok(())
    }

    /// Its public keys, from `jwks` or `jwks_file` (not both), checked; none when it has a
    /// `jwks_uri` instead (and an error when it has both).
    pub fn keys(&self, bounds: &KeyBounds) -> Result<Option<JwkSet>, AdminError> {
        if let Some(uri) = &self.jwks_uri {
            // RFC 7591 §2: "The "jwks_uri" and "jwks" parameters MUST NOT both be present".
            if self.jwks.is_some() || self.jwks_file.is_some() {
                return Err(AdminError::Refused(format!(
                    "client {}: jwks_uri and jwks (or jwks_file) exclude each other (RFC 7591 section 2)",
                    self.client_id
                )));
            }
            crate::client_keys::remote::url(uri)
                .map_err(|e| AdminError::Refused(format!("client {}: jwks_uri {uri}: {e}", self.client_id)))?;
            return Ok(None);
        }
        match (&self.jwks, &self.jwks_file) {
            (Some(_), Some(_)) => {
                Err(AdminError::Refused(format!("client {}: jwks and jwks_file exclude each other", self.client_id)))
            }
            (Some(inline), None) => client_keys::from_value(&self.client_id, inline.clone(), bounds).map(Some),
            (None, Some(path)) => read_jwks_file(&self.client_id, path, bounds).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// Whether it needs a secret: it names no keys or certificates, or it is restricted to a
    /// secret method.
    fn needs_secret(&self, has_keys: bool) -> bool {
        match self.token_endpoint_auth_method {
            Some(m) => m.uses_secret(),
            None => !has_keys,
        }
    }

    /// Its permissions: the implied ones when none names an endpoint or grant type, then its
    /// scopes.
    fn all_permissions(&self) -> Vec<Permission> {
        let mut permissions = self.permissions.clone();
        if !permissions.iter().any(|p| matches!(p, Permission::Endpoint(_) | Permission::GrantType(_))) {
            permissions.push(Permission::Endpoint(Endpoint::Token));
            permissions.push(Permission::Endpoint(Endpoint::Revocation));
            permissions.push(Permission::GrantType(GrantType::ClientCredentials));
        }
        permissions.extend(self.scopes.iter().cloned().map(Permission::Scope));
        permissions.sort();
        permissions.dedup();
        permissions
    }

    fn limits(&self) -> ClientLimits {
        let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
        ClientLimits {
            issuance_rate_milli: self.issuance_rate_per_second.map(|r| (r * 1000.0).round() as i64),
            issuance_burst: self.issuance_burst.map(clamp),
            max_live_tokens: self.max_live_reference_tokens.map(clamp),
        }
    }
}

/// `--issuance-rate`: a non-negative number of tokens per second, or `off` (0: no limit).
#[cfg(feature = "clap")]
fn rate(s: &str) -> Result<f64, String> {
    match s {
        "off" => Ok(0.0),
        _ => s
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("takes a non-negative number or off, not {s:?}")),
    }
}

/// `--max-live-tokens`: a count, or `off` (0: no cap).
#[cfg(feature = "clap")]
fn count(s: &str) -> Result<u64, String> {
    match s {
        "off" => Ok(0),
        _ => s.parse().map_err(|_| format!("takes a non-negative whole number or off, not {s:?}")),
    }
}

/// A secret in the seed file: validated as RFC 6749 VSCHARs, redacted in `Debug`.
pub(crate) fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClientSecret>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    ClientSecret::new(s).map(Some).map_err(serde::de::Error::custom)
}

/// A value spelled as on the command line, so the file and `--help` accept the same words.
pub(crate) fn parsed<'de, D: Deserializer<'de>, T>(d: D) -> Result<Option<T>, D::Error>
where
    T: std::str::FromStr<Err: std::fmt::Display>,
{
    let Some(s) = Option::<String>::deserialize(d)? else { return Ok(None) };
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Registers a client. Returns the record and, when it was generated, the secret in clear:
/// the only time it is ever shown. `keys` bounds its public keys.
pub async fn add_client(
    store: &Store,
    new: ClientSpec,
    default_lifetime: i64,
    keys: &KeyBounds,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(ClientRecord, Option<ClientSecret>), AdminError> {
    new.validate(keys)?;
    for name in &new.scopes {
        ensure_registered(store, name).await?;
    }
    let (record, secret) = client_record(new, default_lifetime, keys, rng, now)?;
    store.add_client(&record).await?;
    Ok((record, secret.and_then(|(secret, generated)| generated.then_some(secret))))
}

/// The record `new` registers (its secret hashed; the secret in clear alongside, and whether
/// it was generated), without the store: what `add_client` stores and `apply` compares.
pub fn client_record(
    new: ClientSpec,
    default_lifetime: i64,
    keys: &KeyBounds,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(ClientRecord, Option<(ClientSecret, bool)>), AdminError> {
    let lifetime = new.access_token_lifetime.unwrap_or(default_lifetime);
    config::validate_lifetime(lifetime).map_err(|e| AdminError::Refused(e.0))?;
    let permissions = new.all_permissions();
    let limits = new.limits();
    let jwks = new.keys(keys)?;
    let has_keys = jwks.is_some() || new.jwks_uri.is_some();
    let tls = new.tls().registration(&new.client_id, keys)?;
    if let Some(method) = new.token_endpoint_auth_method {
        lacks_credentials_for(&new.client_id, method, has_keys, &tls)?;
    }
    // A client with keys or certificates and no secret gets none: nothing shared to leak or
    // guess.
    let secret = match new.secret {
        None if !new.needs_secret(has_keys || !tls.is_empty()) => None,
        imported => Some(imported_or_generated(&new.client_id, imported, new.allow_weak_secret, rng)?),
    };
    let record = ClientRecord {
        client_id: new.client_id,
        display_name: new.display_name,
        secrets: secret.iter().map(|(secret, generated)| secrets::record(secret, *generated, rng, now)).collect(),
        permissions,
        access_token_lifetime: lifetime,
        token_format: new.token_format.unwrap_or_default(),
        signing_alg: new.signing_alg,
        enabled: true,
        created_at: now,
        limits,
        tokens_not_before: None,
        jwks,
        jwks_uri: new.jwks_uri,
        auth_method: new.token_endpoint_auth_method,
        tls,
        require_dpop: new.require_dpop,
    };
    Ok((record, secret))
}

/// Refuses restricting a client to a key or certificate method it has nothing registered for:
/// it could never authenticate.
pub fn lacks_credentials_for(
    client_id: &ClientId,
    method: ClientAuthMethod,
    has_keys: bool,
    tls: &TlsClientRegistration,
) -> Result<(), AdminError> {
    let missing = match method {
        ClientAuthMethod::PrivateKeyJwt if !has_keys => {
            "private_key_jwt needs public keys (--jwks FILE or --jwks-uri URL)"
        }
        ClientAuthMethod::SelfSignedTlsClientAuth if tls.certificates.is_empty() => {
            "self_signed_tls_client_auth needs a certificate (--tls-client-cert FILE)"
        }
        ClientAuthMethod::TlsClientAuth if tls.subject.is_none() => {
            "tls_client_auth needs a subject (--tls-client-auth-subject-dn, -san-dns or -san-uri)"
        }
        _ => return Ok(()),
    };
    Err(AdminError::Refused(format!("client {client_id}: {missing}")))
}

/// Reads a JWK Set file for `client_id` (`--jwks FILE`, `jwks_file`), refusing one over
/// `bounds.max_bytes` before reading it whole.
pub fn read_jwks_file(client_id: &ClientId, path: &Path, bounds: &KeyBounds) -> Result<JwkSet, AdminError> {
    use std::io::Read as _;
    let unreadable = |e: std::io::Error| AdminError::Refused(format!("client {client_id}: {}: {e}", path.display()));
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(bounds.max_bytes as u64 + 1)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    client_keys::parse_jwks(client_id, &text, bounds)
}

/// Scopes and permissions to add to or withdraw from a client.
#[derive(Debug, Clone, Default)]
pub struct PermissionChanges {
    /// Scopes to allow (each must be registered).
    pub add_scopes: Vec<ScopeName>,
    /// Scopes to withdraw.
    pub remove_scopes: Vec<ScopeName>,
    /// Permissions to grant.
    pub add_permissions: Vec<Permission>,
    /// Permissions to withdraw.
    pub remove_permissions: Vec<Permission>,
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
    for name in &add_scopes {
        ensure_registered(store, name).await?;
    }
    permissions.extend(add_scopes.into_iter().map(Permission::Scope));
    permissions.extend(add_permissions);
    let mut withdrawn = remove_permissions;
    withdrawn.extend(remove_scopes.into_iter().map(Permission::Scope));
    permissions.retain(|p| !withdrawn.contains(p));
    permissions.sort();
    permissions.dedup();
    Ok(Some(permissions))
}

/// A client may be allowed only a scope that exists.
async fn ensure_registered(store: &Store, name: &ScopeName) -> Result<(), AdminError> {
    if crate::admin_api::builtin::scope(name).is_some() {
        return Ok(());
    }
    match store.get_scope(name).await? {
        Some(_) => Ok(()),
        None => {
            Err(AdminError::Refused(format!("scope {name} is not registered; add it first with `tessera scope add`")))
        }
    }
}

/// Adds a secret to an existing client (rotation). Returns its id and, when generated, the
/// secret in clear.
pub async fn add_secret(
    store: &Store,
    client_id: &ClientId,
    secret: Option<ClientSecret>,
    allow_weak_secret: bool,
    expires_in: Option<i64>,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(String, Option<ClientSecret>), AdminError> {
    if expires_in.is_some_and(|s| s <= 0) {
        return Err(AdminError::Refused("--expires-in must be in the future".into()));
    }
    let (secret, generated) = imported_or_generated(client_id, secret, allow_weak_secret, rng)?;
    let record =
        SecretRecord { expires_at: expires_in.map(|s| now.plus(s)), ..secrets::record(&secret, generated, rng, now) };
    if !store.add_secret(client_id, &record).await? {
        return Err(AdminError::Refused(format!("no client {client_id}")));
    }
    Ok((record.id, generated.then_some(secret)))
}

/// The secret to store: the imported one if it is strong enough (or explicitly allowed to be
/// weak, with a warning), else a generated one.
fn imported_or_generated(
    client_id: &ClientId,
    secret: Option<ClientSecret>,
    allow_weak: bool,
    rng: &dyn Random,
) -> Result<(ClientSecret, bool), AdminError> {
    let Some(secret) = secret else { return Ok((secrets::generate(rng), true)) };
    if let Some(why) = weakness(client_id, &secret, allow_weak)? {
        tracing::warn!(%client_id, reason = %why, "weak imported secret accepted (allow_weak_secret): sample use only");
    }
    Ok((secret, false))
}

/// Why an imported secret is below the strength floor, when it is and that is allowed; an
/// error when it is and that is not.
fn weakness(client_id: &ClientId, secret: &ClientSecret, allow_weak: bool) -> Result<Option<String>, AdminError> {
    match secrets::check_strength(secret) {
        Ok(()) => Ok(None),
        Err(why) if allow_weak => Ok(Some(why)),
        Err(why) => Err(AdminError::Refused(format!(
            "the secret for {client_id} is too weak: {why}; omit it to have a 256-bit secret generated"
        ))),
    }
}

/// Creates the configured scopes and clients that are absent (idempotent: existing ones are
/// left as they are). Returns the generated secrets, to be shown once.
pub async fn seed(
    store: &Store,
    scopes: &[ScopeSpec],
    clients: &[ClientSpec],
    default_lifetime: i64,
    keys: &KeyBounds,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<Vec<(ClientId, ClientSecret)>, AdminError> {
    for s in scopes {
        match add_scope(store, s.clone(), now).await {
            Ok(_) => tracing::info!(scope = %s.name, "seeded scope"),
            Err(AdminError::Store(StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    let mut generated = Vec::new();
    for c in clients {
        match add_client(store, c.clone(), default_lifetime, keys, rng, now).await {
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
