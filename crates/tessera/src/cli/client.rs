//! `tessera client add|list|show|remove|disable|enable` and `client secret add|remove`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::Settings;
use tessera_server::admin::{self, ClientSpec};
use tessera_server::admin_api::views;
use tessera_server::client_keys::KeyBounds;
use tessera_store::{ClientUpdate, Store};
use tessera_types::rfc8705::TlsClientRegistration;
use tessera_types::{
    ClientAuthMethod, ClientId, ClientSecret, JwksUri, Permission, ScopeName, SigningAlg, TokenFormat,
};

use super::remote::{Remote, not_remote, segment};
use super::{CliResult, now, print_json, read_one_line, rng};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Without --secret-file (or --secret), a 256-bit secret is generated
    /// and shown once.
    Add {
        #[command(flatten)]
        spec: ClientSpec,
        #[command(flatten)]
        secret: SecretInput,
    },
    /// Change a client's settings.
    Update {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        /// jwt or reference.
        #[arg(long)]
        token_format: Option<TokenFormat>,
        /// Access token lifetime in seconds.
        #[arg(long)]
        lifetime: Option<i64>,
        /// Signing algorithm of its tokens.
        #[arg(long)]
        signing_alg: Option<SigningAlg>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Allow a further scope (must be registered); repeatable.
        #[arg(long = "add-scope", value_parser = |s: &str| ScopeName::new(s))]
        add_scopes: Vec<ScopeName>,
        /// Withdraw a scope; repeatable.
        #[arg(long = "remove-scope", value_parser = |s: &str| ScopeName::new(s))]
        remove_scopes: Vec<ScopeName>,
        /// Grant a permission (ept:introspection, ...); repeatable.
        #[arg(long = "add-permission")]
        add_permissions: Vec<Permission>,
        /// Withdraw a permission; repeatable.
        #[arg(long = "remove-permission")]
        remove_permissions: Vec<Permission>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Replace its private_key_jwt public keys with this JWK Set file (key rotation:
        /// list the new key beside the old one until the client has switched). Replaces a
        /// jwks_uri.
        #[arg(long = "jwks", value_name = "FILE")]
        jwks_file: Option<PathBuf>,
        /// Fetch its private_key_jwt public keys from this https URL instead (RFC 7591
        /// section 2 jwks_uri). Replaces registered keys.
        #[arg(long = "jwks-uri", value_name = "URL", value_parser = |s: &str| JwksUri::new(s), conflicts_with = "jwks_file")]
        jwks_uri: Option<JwksUri>,
        /// Restrict it to one authentication method: client_secret_basic,
        /// client_secret_post, private_key_jwt, tls_client_auth,
        /// self_signed_tls_client_auth, or `any` to lift the restriction.
        #[arg(long, value_name = "METHOD|any", value_parser = auth_method)]
        token_endpoint_auth_method: Option<Option<ClientAuthMethod>>,
        /// Replace its self_signed_tls_client_auth certificates with these PEM files
        /// (repeatable: list the new certificate beside the old one until the client has
        /// switched).
        #[arg(long = "tls-client-cert", value_name = "FILE")]
        tls_client_certs: Vec<PathBuf>,
        /// Replace its tls_client_auth subject with this DN (RFC 4514).
        #[arg(long = "tls-client-auth-subject-dn", value_name = "DN")]
        tls_client_auth_subject_dn: Option<String>,
        /// Replace its tls_client_auth subject with this subjectAltName DNS name.
        #[arg(long = "tls-client-auth-san-dns", value_name = "NAME")]
        tls_client_auth_san_dns: Option<String>,
        /// Replace its tls_client_auth subject with this subjectAltName URI.
        #[arg(long = "tls-client-auth-san-uri", value_name = "URI")]
        tls_client_auth_san_uri: Option<String>,
        /// Whether its token requests must carry a DPoP proof (RFC 9449).
        #[arg(long, value_name = "true|false")]
        require_dpop: Option<bool>,
    },
    /// List clients.
    List,
    /// Show one client as JSON (secret ids, never secrets).
    Show {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
    },
    /// Remove a client and its secrets.
    Remove {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
    },
    /// Disable a client: it can no longer authenticate.
    Disable {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
    },
    /// Enable a disabled client.
    Enable {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
    },
    /// Manage a client's secrets (several may be active, for rotation).
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add a secret; without --secret-file (or --secret) one is generated and shown once.
    Add {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        #[command(flatten)]
        secret: SecretInput,
        /// Accept an imported secret below the strength floor, with a warning.
        #[arg(long)]
        allow_weak_secret: bool,
        /// The secret stops authenticating after this long (`90d`, `12h`); default: never.
        #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
        expires_in: Option<i64>,
    },
    /// Make a secret expire (rotation: add the new one, let the old one expire once every
    /// caller has moved). `--in 0s` is refused: remove it instead.
    Expire {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        /// Secret id (see `client show`).
        secret_id: String,
        /// From now (`7d`, `12h`).
        #[arg(long = "in", value_name = "DURATION", value_parser = super::parse_duration)]
        expires_in: i64,
    },
    /// Remove a secret by its id (see `client show`).
    Remove {
        /// Client id.
        #[arg(value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        /// Secret id.
        secret_id: String,
    },
}

/// An imported secret (hashed with argon2id): from a file, standard input, a prompt, or —
/// discouraged — the command line.
#[derive(Debug, Args)]
pub struct SecretInput {
    /// Import the secret from this file: one line, the trailing newline stripped. `-` reads
    /// standard input; on a terminal it prompts twice without echo.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// Import this secret. DISCOURAGED: a value on the command line is visible to other users
    /// in `ps` and kept in shell history; use --secret-file (or TESSERA_IMPORT_CLIENT_SECRET).
    #[arg(
        long,
        env = "TESSERA_IMPORT_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = |s: &str| ClientSecret::new(s)
    )]
    secret: Option<ClientSecret>,
}

impl SecretInput {
    /// The secret to import, or `None` to generate one.
    fn read(self, client_id: &ClientId) -> Result<Option<ClientSecret>, Box<dyn std::error::Error>> {
        let text = match (self.secret, self.secret_file) {
            (Some(_), Some(_)) => {
                return Err("--secret (or TESSERA_IMPORT_CLIENT_SECRET) and --secret-file exclude each other".into());
            }
            (Some(secret), None) => return Ok(Some(secret)),
            (None, Some(path)) if path == Path::new("-") && std::io::stdin().is_terminal() => {
                let first = read_hidden(&format!("client secret for {client_id} (not echoed): "))?;
                let again = read_hidden("again: ")?;
                if first != again {
                    return Err("the two secrets differ; nothing was changed".into());
                }
                if first.is_empty() {
                    return Err("empty secret".into());
                }
                first
            }
            (None, Some(path)) => read_one_line(&path, "--secret-file")?,
            (None, None) => return Ok(None),
        };
        Ok(Some(ClientSecret::new(text)?))
    }
}

/// `--token-endpoint-auth-method`: a method, or `any`.
fn auth_method(s: &str) -> Result<Option<ClientAuthMethod>, String> {
    match s {
        "any" => Ok(None),
        _ => s.parse().map(Some).map_err(|e: tessera_types::InvalidValue| e.to_string()),
    }
}

/// Reads one line from the terminal on standard input with echo off (termios), restoring the
/// terminal afterwards.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::Write as _;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a terminal fd and fails otherwise.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: a valid termios for the same fd.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The prompt only once echo is off: whatever is typed as soon as it shows stays hidden.
    let mut stderr = std::io::stderr();
    let mut line = String::new();
    let read = stderr
        .write_all(prompt.as_bytes())
        .and_then(|()| stderr.flush())
        .and_then(|()| std::io::stdin().read_line(&mut line));
    // SAFETY: restores what tcgetattr returned.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Changes to a client's own issuance limits: each takes a number, `off` (no limit) or
/// `default` (back to the server's `[limits]`).
#[derive(Debug, Default, clap::Args)]
pub struct LimitArgs {
    /// Tokens per second this client may obtain (over limits.issuance_rate_per_second).
    #[arg(long, value_name = "PER_SECOND|off|default")]
    issuance_rate: Option<String>,
    /// Tokens it may obtain at once above that rate (over limits.issuance_burst).
    #[arg(long, value_name = "N|default")]
    issuance_burst: Option<String>,
    /// Live reference tokens it may hold (over limits.max_live_reference_tokens).
    #[arg(long, value_name = "N|off|default")]
    max_live_tokens: Option<String>,
}

impl LimitArgs {
    fn parse(value: &Option<String>, scale: f64, what: &str) -> Result<Option<Option<i64>>, String> {
        match value.as_deref() {
            None => Ok(None),
            Some("default") => Ok(Some(None)),
            Some("off") => Ok(Some(Some(0))),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(Some((n * scale).round() as i64))),
                _ => Err(format!("--{what} takes a non-negative number, off or default, not {v:?}")),
            },
        }
    }

    fn rate_milli(&self) -> Result<Option<Option<i64>>, String> {
        Self::parse(&self.issuance_rate, 1000.0, "issuance-rate")
    }

    fn burst(&self) -> Result<Option<Option<i64>>, String> {
        Self::parse(&self.issuance_burst, 1.0, "issuance-burst")
    }

    fn max_live(&self) -> Result<Option<Option<i64>>, String> {
        Self::parse(&self.max_live_tokens, 1.0, "max-live-tokens")
    }
}

pub async fn run(cmd: ClientCommand, store: &Store, settings: &Settings) -> CliResult {
    match cmd {
        ClientCommand::Add { spec, secret } => {
            let spec = ClientSpec { secret: secret.read(&spec.client_id)?, ..spec };
            let (record, generated) = admin::add_client(
                store,
                spec,
                settings.access_token_lifetime,
                &settings.limits.client_keys,
                &rng(),
                now(),
            )
            .await?;
            if super::json_output() {
                let mut doc = json!({ "client": views::client(&record, now()) });
                if let Some(secret) = generated {
                    doc["client_secret"] = secret.expose().into();
                }
                print_json(&doc);
                return Ok(());
            }
            println!("added client {}", record.client_id);
            if let Some(secret) = generated {
                println!("client_secret: {}", secret.expose());
                println!("(shown once: only its hash is stored)");
            }
        }
        ClientCommand::List => {
            let all: Vec<_> = store.list_clients().await?.iter().map(|c| views::client(c, now())).collect();
            if super::json_output() {
                print_json(&all.into());
            } else {
                for c in &all {
                    println!("{}", list_line(c));
                }
            }
        }
        ClientCommand::Update {
            client_id,
            token_format,
            lifetime,
            signing_alg,
            display_name,
            add_scopes,
            remove_scopes,
            add_permissions,
            remove_permissions,
            limits,
            jwks_file,
            jwks_uri,
            token_endpoint_auth_method,
            tls_client_certs,
            tls_client_auth_subject_dn,
            tls_client_auth_san_dns,
            tls_client_auth_san_uri,
            require_dpop,
        } => {
            let tls_spec = admin::TlsClientSpec {
                cert_files: tls_client_certs,
                certs: Vec::new(),
                thumbprints: Vec::new(),
                subject_dn: tls_client_auth_subject_dn,
                san_dns: tls_client_auth_san_dns,
                san_uri: tls_client_auth_san_uri,
            };
            let tls = if tls_spec.is_given() {
                let current = store.get_client(&client_id).await?.ok_or_else(|| format!("no client {client_id}"))?;
                let given = tls_spec.registration(&client_id, &settings.limits.client_keys)?;
                // What is not given is kept: new certificates keep the subject, and back.
                Some(TlsClientRegistration {
                    certificates: if tls_spec.cert_files.is_empty() {
                        current.tls.certificates
                    } else {
                        given.certificates
                    },
                    subject: given.subject.or(current.tls.subject),
                })
            } else {
                None
            };
            if let Some(l) = lifetime {
                tessera_server::config::validate_lifetime(l)?;
            }
            let changes = admin::PermissionChanges { add_scopes, remove_scopes, add_permissions, remove_permissions };
            let permissions = admin::changed_permissions(store, &client_id, changes).await?;
            let update = ClientUpdate {
                display_name,
                access_token_lifetime: lifetime,
                token_format,
                signing_alg,
                permissions,
                issuance_rate_milli: limits.rate_milli()?,
                issuance_burst: limits.burst()?,
                max_live_tokens: limits.max_live()?,
                jwks: jwks_file
                    .map(|path| admin::read_jwks_file(&client_id, &path, &settings.limits.client_keys))
                    .transpose()?
                    .map(Some),
                jwks_uri: match jwks_uri {
                    Some(uri) => {
                        tessera_server::client_keys::remote::url(&uri).map_err(|e| format!("--jwks-uri {uri}: {e}"))?;
                        Some(Some(uri))
                    }
                    None => None,
                },
                auth_method: token_endpoint_auth_method,
                tls,
                require_dpop,
            };
            if !store.update_client(&client_id, &update).await? {
                return Err(format!("no client {client_id}").into());
            }
            println!("updated client {client_id}");
        }
        ClientCommand::Show { client_id } => {
            let c = store.get_client(&client_id).await?.ok_or_else(|| format!("no client {client_id}"))?;
            print_json(&views::client(&c, now()));
        }
        ClientCommand::Remove { client_id } => {
            if !store.remove_client(&client_id, now()).await? {
                return Err(format!("no client {client_id}").into());
            }
            println!("removed client {client_id}");
        }
        ClientCommand::Disable { client_id } => set_enabled(store, &client_id, false).await?,
        ClientCommand::Enable { client_id } => set_enabled(store, &client_id, true).await?,
        ClientCommand::Secret(SecretCommand::Add { client_id, secret, allow_weak_secret, expires_in }) => {
            let secret = secret.read(&client_id)?;
            let (secret_id, generated) =
                admin::add_secret(store, &client_id, secret, allow_weak_secret, expires_in, &rng(), now()).await?;
            match expires_in {
                Some(secs) => {
                    println!("added secret {secret_id} to client {client_id}, expiring at {}", now().plus(secs).0)
                }
                None => println!("added secret {secret_id} to client {client_id}"),
            }
            if let Some(secret) = generated {
                println!("client_secret: {}", secret.expose());
                println!("(shown once: only its hash is stored)");
            }
        }
        ClientCommand::Secret(SecretCommand::Expire { client_id, secret_id, expires_in }) => {
            let at = now().plus(expires_in);
            if !store.set_secret_expiry(&client_id, &secret_id, Some(at)).await? {
                return Err(format!("client {client_id} has no secret {secret_id}").into());
            }
            println!("secret {secret_id} of client {client_id} expires at {}", at.0);
        }
        ClientCommand::Secret(SecretCommand::Remove { client_id, secret_id }) => {
            if !store.remove_secret(&client_id, &secret_id).await? {
                return Err(format!("client {client_id} has no secret {secret_id}").into());
            }
            println!("removed secret {secret_id} from client {client_id}");
        }
    }
    Ok(())
}

/// One line of `client list`, from a client as the admin API renders it (so that the line is
/// the same with and without --server): id, state, secret count, keys (a count or the
/// jwks_uri), permissions.
fn list_line(c: &Value) -> String {
    let count = |key: &str| c[key].as_array().map_or(0, Vec::len);
    let perms: Vec<&str> =
        c["permissions"].as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(Value::as_str).collect();
    format!(
        "{}\t{}\tsecrets={}\tkeys={}\t{}",
        c["client_id"].as_str().unwrap_or_default(),
        if c["enabled"].as_bool().unwrap_or(false) { "enabled" } else { "disabled" },
        count("secrets"),
        match c["jwks_uri"].as_str() {
            Some(uri) => uri.to_owned(),
            None => count("keys").to_string(),
        },
        perms.join(" ")
    )
}

/// `client add` as the admin API takes it: the seed file's `[[clients]]` entry, the files
/// the options name read here and sent inline (the server reads no file for a caller).
fn remote_spec(spec: ClientSpec) -> Result<Value, Box<dyn std::error::Error>> {
    let mut body = json!({ "client_id": spec.client_id });
    let mut set = |key: &str, value: Value| {
        if !value.is_null() {
            body[key] = value;
        }
    };
    set("secret", spec.secret.as_ref().map(|s| s.expose()).into());
    set("display_name", spec.display_name.clone().into());
    if !spec.scopes.is_empty() {
        set("scopes", json!(spec.scopes));
    }
    if !spec.permissions.is_empty() {
        set("permissions", json!(spec.permissions));
    }
    set("access_token_lifetime", spec.access_token_lifetime.into());
    set("signing_alg", spec.signing_alg.map(|a| a.as_str()).into());
    set("token_format", spec.token_format.map(|f| f.as_str()).into());
    if spec.allow_weak_secret {
        set("allow_weak_secret", true.into());
    }
    set("issuance_rate_per_second", spec.issuance_rate_per_second.into());
    set("issuance_burst", spec.issuance_burst.into());
    set("max_live_reference_tokens", spec.max_live_reference_tokens.into());
    let jwks = match &spec.jwks_file {
        // Checked here as the server will check it, with the default bounds.
        Some(path) => Some(serde_json::to_value(admin::read_jwks_file(&spec.client_id, path, &KeyBounds::default())?)?),
        None => spec.jwks.clone(),
    };
    set("jwks", jwks.unwrap_or(Value::Null));
    set("jwks_uri", spec.jwks_uri.as_ref().map(|u| u.as_str()).into());
    set("token_endpoint_auth_method", spec.token_endpoint_auth_method.map(|m| m.as_str()).into());
    let mut certs = spec.tls_client_certs.clone();
    for path in &spec.tls_client_cert_files {
        certs.push(std::fs::read_to_string(path).map_err(|e| format!("--tls-client-cert {}: {e}", path.display()))?);
    }
    if !certs.is_empty() {
        set("tls_client_certs", json!(certs));
    }
    set("tls_client_auth_subject_dn", spec.tls_client_auth_subject_dn.clone().into());
    set("tls_client_auth_san_dns", spec.tls_client_auth_san_dns.clone().into());
    set("tls_client_auth_san_uri", spec.tls_client_auth_san_uri.clone().into());
    if spec.require_dpop {
        set("require_dpop", true.into());
    }
    Ok(body)
}

fn print_generated(answer: &Value) {
    if let Some(secret) = answer["client_secret"].as_str() {
        println!("client_secret: {secret}");
        println!("(shown once: only its hash is stored)");
    }
}

/// The same commands through the admin API (`--server`); `client update` stays local.
pub async fn run_remote(cmd: ClientCommand, remote: &Remote) -> CliResult {
    let path = |id: &ClientId| format!("/admin/clients/{}", segment(id.as_str()));
    match cmd {
        ClientCommand::Add { spec, secret } => {
            let spec = ClientSpec { secret: secret.read(&spec.client_id)?, ..spec };
            let answer = remote.call(Method::POST, "/admin/clients", Some(remote_spec(spec)?)).await?;
            if super::json_output() {
                print_json(&answer);
                return Ok(());
            }
            println!("added client {}", answer["client"]["client_id"].as_str().unwrap_or_default());
            print_generated(&answer);
        }
        ClientCommand::List => {
            let all = remote.get("/admin/clients").await?;
            if super::json_output() {
                print_json(&all["clients"]);
                return Ok(());
            }
            for c in all["clients"].as_array().map(Vec::as_slice).unwrap_or_default() {
                println!("{}", list_line(c));
            }
        }
        ClientCommand::Show { client_id } => print_json(&remote.get(&path(&client_id)).await?),
        ClientCommand::Remove { client_id } => {
            remote.call(Method::DELETE, &path(&client_id), None).await?;
            println!("removed client {client_id}");
        }
        ClientCommand::Disable { client_id } => {
            remote.call(Method::PATCH, &path(&client_id), Some(json!({ "enabled": false }))).await?;
            println!("disabled client {client_id}");
        }
        ClientCommand::Enable { client_id } => {
            remote.call(Method::PATCH, &path(&client_id), Some(json!({ "enabled": true }))).await?;
            println!("enabled client {client_id}");
        }
        ClientCommand::Update { .. } => return Err(not_remote("client update")),
        ClientCommand::Secret(SecretCommand::Add { client_id, secret, allow_weak_secret, expires_in }) => {
            let mut body = json!({ "allow_weak_secret": allow_weak_secret, "expires_in": expires_in });
            if let Some(secret) = secret.read(&client_id)? {
                body["secret"] = secret.expose().into();
            }
            let answer = remote.call(Method::POST, &format!("{}/secrets", path(&client_id)), Some(body)).await?;
            let id = answer["id"].as_str().unwrap_or_default();
            match answer["expires_at"].as_i64() {
                Some(at) => println!("added secret {id} to client {client_id}, expiring at {at}"),
                None => println!("added secret {id} to client {client_id}"),
            }
            print_generated(&answer);
        }
        ClientCommand::Secret(SecretCommand::Expire { client_id, secret_id, expires_in }) => {
            let url = format!("{}/secrets/{}", path(&client_id), segment(&secret_id));
            let answer = remote.call(Method::PATCH, &url, Some(json!({ "expires_in": expires_in }))).await?;
            println!("secret {secret_id} of client {client_id} expires at {}", answer["expires_at"]);
        }
        ClientCommand::Secret(SecretCommand::Remove { client_id, secret_id }) => {
            let url = format!("{}/secrets/{}", path(&client_id), segment(&secret_id));
            remote.call(Method::DELETE, &url, None).await?;
            println!("removed secret {secret_id} from client {client_id}");
        }
    }
    Ok(())
}

async fn set_enabled(store: &Store, client_id: &ClientId, enabled: bool) -> CliResult {
    if !store.set_client_enabled(client_id, enabled, now()).await? {
        return Err(format!("no client {client_id}").into());
    }
    println!("{} client {client_id}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use tessera_server::FileConfig;

    use super::*;
    use crate::cli::{Args, Command, OnStore};

    /// Issue 11: `client add` and a `[[clients]]` entry of the seed file are one type, parsed
    /// alike.
    #[test]
    fn the_command_line_and_the_seed_file_produce_the_same_client_spec() {
        let args = Args::try_parse_from([
            "tessera",
            "client",
            "add",
            "CC",
            "--scope",
            "api",
            "--permission",
            "introspection",
            "--lifetime",
            "600",
            "--signing-alg",
            "EdDSA",
            "--token-format",
            "reference",
            "--issuance-rate",
            "off",
            "--issuance-burst",
            "5",
            "--max-live-tokens",
            "7",
            "--display-name",
            "Console",
            "--allow-weak-secret",
        ])
        .unwrap();
        let Command::Client(OnStore { command: ClientCommand::Add { spec, .. }, .. }) = args.command else {
            panic!("not client add")
        };
        let file = FileConfig::parse(
            r#"
            [[clients]]
            client_id = "CC"
            scopes = ["api"]
            permissions = ["ept:introspection"]
            access_token_lifetime = 600
            signing_alg = "EdDSA"
            token_format = "reference"
            issuance_rate_per_second = 0
            issuance_burst = 5
            max_live_reference_tokens = 7
            display_name = "Console"
            allow_weak_secret = true
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(spec, file.clients[0]);
        for bad in [["--signing-alg", "HS256"], ["--token-format", "opaque"], ["--permission", "ept:authorize"]] {
            assert!(Args::try_parse_from(["tessera", "client", "add", "CC", bad[0], bad[1]]).is_err(), "{bad:?}");
        }
    }
}
