//! Configuration: raw values from the TOML file and the command line, validated once into
//! [`Settings`]. Every switch is documented in the README.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_store::pg_url::DatabaseUrl;
use tessera_types::{Issuer, SigningAlg};

use crate::admin::{ClientSpec, ScopeSpec};
use crate::certificate::{ForwardedCertificate, MtlsSettings};

/// Default access token lifetime, seconds.
pub const DEFAULT_TOKEN_LIFETIME: i64 = 3600;
/// Default request body limit of the token endpoint.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The optional TOML file (`--config FILE`). Unknown keys are errors, so typos surface.
/// `Debug` is safe to log: the database URL and client secrets redact themselves.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    /// Plain-HTTP listener for `GET /metrics` (Prometheus text format), `IP:PORT`; absent
    /// (the default): no metrics are served or recorded.
    pub metrics_listen: Option<String>,
    /// `text`, `json` or `auto` (the binary reads it before anything else starts).
    pub log_format: Option<String>,
    pub issuer: Option<String>,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (development behind a TLS-terminating proxy only).
    pub http: Option<bool>,
    /// Signing algorithms; the first signs tokens unless a client names another.
    pub signing_algs: Option<Vec<String>>,
    /// Default access token lifetime, seconds.
    pub access_token_lifetime: Option<i64>,
    /// How often to look for registry changes made by the CLI, milliseconds.
    pub registry_poll_ms: Option<u64>,
    /// Key-encryption key file (shared by instances that share a database).
    pub key_encryption_key_file: Option<PathBuf>,
    /// How often expired reference tokens and revocations are deleted, milliseconds.
    pub prune_interval_ms: Option<u64>,
    /// Token endpoint body limit, bytes.
    pub max_body_bytes: Option<usize>,
    /// `postgres://...` to share state between instances; absent: embedded SQLite.
    pub database_url: Option<DatabaseUrl>,
    /// Most PostgreSQL connections per instance.
    pub database_pool_size: Option<u32>,
    /// How long a registry snapshot may go unconfirmed (database unreachable) before the token
    /// endpoint answers 503 rather than trust it, milliseconds.
    pub registry_max_stale_ms: Option<u64>,
    /// Seconds a signing key signs before the next replaces it (0: rotate only with `tessera
    /// key rotate`); default 30 days.
    pub key_rotation_period_s: Option<i64>,
    /// Seconds the next key is published before it signs; default 2 days.
    pub key_prepublish_s: Option<i64>,
    /// Which `aud` a `private_key_jwt` assertion may carry: `issuer` (RFC 7523bis, the
    /// default) or `issuer_or_token_endpoint`.
    pub client_assertion_audience: Option<crate::limits::AssertionAudience>,
    /// Longest `private_key_jwt` assertion lifetime accepted, seconds (default 300).
    pub max_client_assertion_lifetime: Option<i64>,
    /// PEM file of the CAs whose certificates `tls_client_auth` clients may present (RFC 8705
    /// §2.1); absent: only `self_signed_tls_client_auth`.
    pub mtls_client_ca_file: Option<PathBuf>,
    /// Behind a TLS-terminating proxy: the request header it forwards the client certificate
    /// in, URL-encoded PEM (nginx `$ssl_client_escaped_cert`). Off by default.
    pub mtls_client_cert_header: Option<String>,
    /// The proxies (IP addresses) whose `mtls_client_cert_header` is believed; required with
    /// it.
    #[serde(default)]
    pub mtls_trusted_proxies: Vec<IpAddr>,
    /// PEM CA certificates trusted for clients' `jwks_uri`, beside the platform's (a key
    /// server behind a private CA).
    pub jwks_uri_ca_file: Option<PathBuf>,
    /// Connection, request, authentication and issuance bounds.
    #[serde(default)]
    pub limits: crate::limits::LimitsFile,
    /// Serve the admin REST API under `/admin` (default true): usable only by clients
    /// allowed a built-in `tessera:*` scope, so on until one is; `false` removes the routes.
    pub admin_api: Option<bool>,
    /// Scopes to create at start-up when absent.
    #[serde(default)]
    pub scopes: Vec<ScopeSpec>,
    /// Clients to create at start-up when absent.
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    /// Trusted issuers of workload identities to create at start-up when absent, with their
    /// rules (issue 15).
    #[serde(default)]
    pub trusts: Vec<crate::federation::trusts::TrustSpec>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))
    }
}

/// How the listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TLS with a development certificate generated once in the data directory.
    DevTls,
    /// TLS with the operator's certificate.
    Tls {
        /// PEM chain.
        cert: PathBuf,
        /// PEM key.
        key: PathBuf,
    },
    /// Plain HTTP (explicit `--http`).
    PlainHttp,
}

/// Command-line values, which win over the file; each field is the `tessera serve` option of
/// the same name.
#[derive(Debug, Default, Clone)]
#[allow(missing_docs)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub issuer: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub http: bool,
    /// `--signing-alg` (repeatable).
    pub signing_algs: Vec<String>,
    pub database_url: Option<DatabaseUrl>,
    pub kek_file: Option<PathBuf>,
}

/// Validated settings. `Debug` is safe to log: the database URL and client secrets redact
/// themselves.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Settings {
    /// Where the embedded store, key-encryption key and dev certificate live.
    pub data_dir: PathBuf,
    /// Listen address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where `GET /metrics` is served, in plain HTTP; `None`: nowhere, and nothing recorded.
    pub metrics_listen: Option<SocketAddr>,
    /// Issuer; derived from the bound address when absent.
    pub issuer: Option<Issuer>,
    pub transport: Transport,
    /// Signing algorithms, default first.
    pub signing_algs: Vec<SigningAlg>,
    /// Default access token lifetime, seconds.
    pub access_token_lifetime: i64,
    pub registry_poll: Duration,
    pub kek_file: PathBuf,
    pub prune_interval: Duration,
    /// PostgreSQL URL; `None` for the embedded store.
    pub database_url: Option<DatabaseUrl>,
    pub database_pool_size: u32,
    /// See [`FileConfig::registry_max_stale_ms`].
    pub registry_max_stale: Duration,
    /// When signing keys rotate.
    pub key_rotation: crate::rotation::RotationPolicy,
    /// Token endpoint body limit.
    pub max_body_bytes: usize,
    /// Every bound the server enforces.
    pub limits: crate::limits::Limits,
    /// Client CAs and the forwarded-certificate header (RFC 8705).
    pub mtls: MtlsSettings,
    /// See [`FileConfig::admin_api`].
    pub admin_api: bool,
    pub seed_scopes: Vec<ScopeSpec>,
    pub seed_clients: Vec<ClientSpec>,
    pub seed_trusts: Vec<crate::federation::trusts::TrustSpec>,
}

impl Settings {
    /// Defaults for `data_dir`, as `tessera serve` with no options would use them.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self::resolve(Overrides { data_dir: Some(data_dir.into()), ..Default::default() }, FileConfig::default())
            .expect("defaults are valid")
    }

    /// Merges the command line over the file and validates the result.
    pub fn resolve(cli: Overrides, file: FileConfig) -> Result<Self, ConfigError> {
        let data_dir = cli.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./tessera-data"));
        let listen_text = cli.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:8443".into());
        let listen: SocketAddr =
            listen_text.parse().map_err(|_| ConfigError(format!("listen address {listen_text:?} is not IP:PORT")))?;
        let metrics_listen = match cli.metrics_listen.or(file.metrics_listen).filter(|t| !t.is_empty() && t != "off") {
            None => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|_| ConfigError(format!("metrics_listen address {text:?} is not IP:PORT (or \"off\")")))?,
            ),
        };
        let issuer = match cli.issuer.or(file.issuer) {
            Some(i) => Some(validate_issuer(&i)?),
            None => None,
        };
        let http = cli.http || file.http.unwrap_or(false);
        let cert = cli.tls_cert.or(file.tls_cert);
        let key = cli.tls_key.or(file.tls_key);
        let transport = match (http, cert, key) {
            (true, None, None) => Transport::PlainHttp,
            (true, _, _) => {
                return Err(ConfigError("--http and a TLS certificate exclude each other".into()));
            }
            (false, Some(cert), Some(key)) => Transport::Tls { cert, key },
            (false, None, None) => Transport::DevTls,
            (false, _, _) => {
                return Err(ConfigError("--tls-cert and --tls-key go together".into()));
            }
        };
        let alg_names =
            if cli.signing_algs.is_empty() { file.signing_algs.unwrap_or_default() } else { cli.signing_algs };
        let mut signing_algs = Vec::new();
        for name in alg_names {
            let alg: SigningAlg = name.parse().map_err(|e| ConfigError(format!("{e}")))?;
            if !signing_algs.contains(&alg) {
                signing_algs.push(alg);
            }
        }
        if signing_algs.is_empty() {
            signing_algs.push(SigningAlg::ES256);
        }
        let access_token_lifetime = file.access_token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        validate_lifetime(access_token_lifetime)?;
        let kek_file =
            cli.kek_file.or(file.key_encryption_key_file).unwrap_or_else(|| data_dir.join("key-encryption.key"));
        let database_url = cli.database_url.or(file.database_url).filter(|u| !u.expose().is_empty());
        if let Some(url) = &database_url {
            if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
                return Err(ConfigError(
                    "database_url must be a postgres:// URL (the embedded SQLite needs none)".into(),
                ));
            }
        }
        // The seed is checked here, before any store is opened or created.
        for scope in &file.scopes {
            scope.validate().map_err(|e| ConfigError(e.to_string()))?;
        }
        let mut limits = file.limits.resolve()?;
        for client in &file.clients {
            client.validate(&limits.client_keys).map_err(|e| ConfigError(e.to_string()))?;
        }
        limits.assertion.audience = file.client_assertion_audience.unwrap_or_default();
        if let Some(path) = &file.jwks_uri_ca_file {
            let roots = crate::client_keys::remote::TrustRoots::read(path)
                .map_err(|e| ConfigError(format!("jwks_uri_ca_file: {e}")))?;
            limits.remote_keys.extra_roots = Some(roots);
        }
        if let Some(max) = file.max_client_assertion_lifetime {
            if !(1..=3600).contains(&max) {
                return Err(ConfigError(format!("max_client_assertion_lifetime {max} s is outside 1..=3600")));
            }
            limits.assertion.max_lifetime = max;
        }
        let mtls = mtls_settings(
            &transport,
            file.mtls_client_ca_file,
            file.mtls_client_cert_header,
            file.mtls_trusted_proxies,
        )?;
        Ok(Self {
            data_dir,
            listen,
            metrics_listen,
            issuer,
            transport,
            signing_algs,
            access_token_lifetime,
            registry_poll: Duration::from_millis(file.registry_poll_ms.unwrap_or(1000).clamp(10, 60_000)),
            kek_file,
            database_url,
            database_pool_size: file.database_pool_size.unwrap_or(10).clamp(1, 500),
            registry_max_stale: Duration::from_millis(file.registry_max_stale_ms.unwrap_or(300_000).max(1000)),
            key_rotation: {
                let d = crate::rotation::RotationPolicy::default();
                crate::rotation::RotationPolicy::new(
                    file.key_rotation_period_s.unwrap_or(d.period),
                    file.key_prepublish_s.unwrap_or(d.prepublish),
                )
                .map_err(ConfigError)?
            },
            prune_interval: Duration::from_millis(file.prune_interval_ms.unwrap_or(60_000).clamp(10, 24 * 3600 * 1000)),
            max_body_bytes: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY).clamp(1024, 16 * 1024 * 1024),
            limits,
            mtls,
            admin_api: file.admin_api.unwrap_or(true),
            seed_scopes: file.scopes,
            seed_clients: file.clients,
            seed_trusts: file.trusts,
        })
    }

    /// The issuer for a server bound at `bound`: the configured one, else derived from the
    /// address (`localhost` for a wildcard address).
    pub fn issuer_for(&self, bound: SocketAddr) -> Issuer {
        if let Some(i) = &self.issuer {
            return i.clone();
        }
        let scheme = if self.transport == Transport::PlainHttp { "http" } else { "https" };
        let host = match bound.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Issuer::new(format!("{scheme}://{host}:{}", bound.port()))
            .expect("a scheme, an IP host and a port make an issuer")
    }
}

/// The mutual-TLS settings: fail closed on an unreadable CA file, and a forwarded-certificate
/// header only together with the proxies allowed to set it.
fn mtls_settings(
    transport: &Transport,
    ca_file: Option<PathBuf>,
    header: Option<String>,
    proxies: Vec<IpAddr>,
) -> Result<MtlsSettings, ConfigError> {
    let mut mtls = MtlsSettings::new(*transport != Transport::PlainHttp);
    if let Some(path) = ca_file {
        mtls = mtls.with_client_ca_file(&path).map_err(|e| ConfigError(format!("mtls_client_ca_file: {e}")))?;
    }
    match (header, proxies.is_empty()) {
        (Some(h), false) => {
            let header = axum::http::HeaderName::try_from(h.as_str())
                .map_err(|_| ConfigError(format!("mtls_client_cert_header {h:?} is not a header name")))?;
            mtls.forwarded = Some(ForwardedCertificate { header, proxies });
        }
        (Some(_), true) => {
            return Err(ConfigError(
                "mtls_client_cert_header needs mtls_trusted_proxies: from anyone else the header is a forgery".into(),
            ));
        }
        (None, false) => return Err(ConfigError("mtls_trusted_proxies needs mtls_client_cert_header".into())),
        (None, true) => {}
    }
    Ok(mtls)
}

/// Access token lifetime bounds: one second to one week.
pub fn validate_lifetime(seconds: i64) -> Result<(), ConfigError> {
    if (1..=7 * 24 * 3600).contains(&seconds) {
        Ok(())
    } else {
        Err(ConfigError(format!("access token lifetime {seconds} s is outside 1..=604800")))
    }
}

/// RFC 8414 §2: the issuer is an https URL with no query or fragment (http allowed for
/// development); `tessera_types::Issuer` checks it and trims the trailing slash.
fn validate_issuer(issuer: &str) -> Result<Issuer, ConfigError> {
    Issuer::new(issuer).map_err(|e| {
        ConfigError(format!(
            "issuer {issuer:?} must be an https URL without query or fragment (RFC 8414 section 2): {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_issuer() {
        let s = Settings::for_data_dir("/tmp/x");
        assert_eq!(s.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(s.metrics_listen, None, "metrics are served nowhere unless asked for");
        assert_eq!(s.transport, Transport::DevTls);
        assert_eq!(s.signing_algs, vec![SigningAlg::ES256]);
        assert_eq!(s.issuer_for(s.listen), "https://127.0.0.1:8443".parse().unwrap());
        assert_eq!(s.issuer_for("0.0.0.0:9000".parse().unwrap()), "https://localhost:9000".parse().unwrap());
    }

    #[test]
    fn bad_values_are_refused() {
        let o = |f: fn(&mut Overrides)| {
            let mut o = Overrides::default();
            f(&mut o);
            Settings::resolve(o, FileConfig::default())
        };
        assert!(o(|o| o.listen = Some("nope".into())).is_err());
        assert!(o(|o| o.metrics_listen = Some("9464".into())).is_err());
        assert_eq!(o(|o| o.metrics_listen = Some("off".into())).unwrap().metrics_listen, None);
        assert!(o(|o| o.issuer = Some("ftp://x".into())).is_err());
        assert!(o(|o| o.signing_algs = vec!["HS256".into()]).is_err());
        assert!(o(|o| o.signing_algs = vec!["none".into()]).is_err());
        assert!(o(|o| o.tls_cert = Some("c".into())).is_err());
        assert!(toml::from_str::<FileConfig>("unknown_key = 1").is_err());
    }

    #[test]
    fn debug_redacts_secrets_and_database_passwords() {
        let file = || -> FileConfig {
            toml::from_str(
                r#"
                database_url = "postgres://tessera:file-db-pw@db.example.com/t"
                [[clients]]
                client_id = "CC"
                secret = "seed-secret-value"
                "#,
            )
            .unwrap()
        };
        let cli = Overrides {
            database_url: Some(DatabaseUrl::new("postgres://tessera:cli-db-pw@db.example.com/t")),
            ..Default::default()
        };
        let settings = Settings::resolve(cli.clone(), file()).unwrap();
        let file = file();
        for text in [
            format!("{file:?}"),
            format!("{cli:?}"),
            format!("{settings:?}"),
            format!("{:?}", settings.seed_clients[0]),
        ] {
            for secret in ["seed-secret-value", "file-db-pw", "cli-db-pw"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
        }
        // What is not secret stays visible.
        assert!(format!("{settings:?}").contains("db.example.com") && format!("{settings:?}").contains("\"CC\""));
    }

    #[test]
    fn rfc7523_seed_clients_take_keys_inline_or_from_a_file_and_the_assertion_settings() {
        let (key, _) = tessera_jose::SigningKey::generate(SigningAlg::ES256).unwrap();
        let jwk = key.public_jwk();
        let (x, y) = (jwk.x.clone().unwrap(), jwk.y.clone().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("svc.jwks");
        std::fs::write(&file, serde_json::to_string(&tessera_types::rfc7517::JwkSet { keys: vec![jwk] }).unwrap())
            .unwrap();
        let text = |extra: &str| {
            format!(
                r#"
                client_assertion_audience = "issuer_or_token_endpoint"
                max_client_assertion_lifetime = 120
                [[clients]]
                client_id = "inline"
                token_endpoint_auth_method = "private_key_jwt"
                jwks = {{ keys = [{{ kty = "EC", crv = "P-256", x = "{x}", y = "{y}"{extra} }}] }}
                [[clients]]
                client_id = "from_file"
                jwks_file = "{}"
                "#,
                file.display()
            )
        };
        let resolve = |t: &str| Settings::resolve(Overrides::default(), FileConfig::parse(t, "test")?);
        let settings = resolve(&text("")).unwrap();
        assert_eq!(settings.limits.assertion.audience, crate::limits::AssertionAudience::IssuerOrTokenEndpoint);
        assert_eq!(settings.limits.assertion.max_lifetime, 120);
        let keys = |i: usize| settings.seed_clients[i].keys(&settings.limits.client_keys).unwrap().unwrap();
        assert_eq!(keys(0).keys[0].kid, key.kid.as_str(), "kid derived: the RFC 7638 thumbprint");
        assert_eq!(keys(1).keys[0].alg.as_deref(), Some("ES256"));
        // Refused before any store is opened: a private member, a bad setting.
        let e = resolve(&text(r#", d = "AAAA""#)).unwrap_err().to_string();
        assert!(e.contains("private member"), "{e}");
        assert!(resolve(&text("").replace("= 120", "= 0")).is_err());
        assert!(resolve(&text("").replace("issuer_or_token_endpoint", "anything")).is_err());
    }
}
