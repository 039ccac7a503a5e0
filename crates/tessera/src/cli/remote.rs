//! `--server URL`: the store commands through the admin REST API of a running server
//! instead of the database (issue 16). The CLI stays local-first: without `--server` it
//! opens the store as before.
//!
//! The admin client's credentials come from the environment (`TESSERA_ADMIN_CLIENT_ID`,
//! `TESSERA_ADMIN_CLIENT_SECRET`) or a file (`--admin-client-secret-file`), never from the
//! command line, where other users would see them in `ps`. Files the local commands read
//! (`--jwks FILE`, `--tls-client-cert FILE`) are read here and sent inline.

use std::path::PathBuf;

use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use tessera_client::{AuthorizedClient, ClientConfig, TokenSource};
use tessera_server::admin_api::ADMIN_RESOURCE;
use tessera_server::admin_api::problem::PROBLEM_JSON;
pub use tessera_server::admin_api::segment;
use tessera_types::{ClientId, ClientSecret, Issuer, Resource};

use super::read_one_line;

/// Where the admin API is and who calls it.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Admin API options (--server)")]
pub struct RemoteArgs {
    /// Manage a running server through its admin API instead of opening the store: its
    /// issuer URL (https). The store options are then not used. Credentials of a client
    /// allowed a built-in admin scope (tessera:admin, or tessera:AREA:read|write) come from
    /// TESSERA_ADMIN_CLIENT_ID and TESSERA_ADMIN_CLIENT_SECRET (or
    /// --admin-client-secret-file).
    #[arg(long, global = true, env = "TESSERA_SERVER", value_name = "URL")]
    server: Option<String>,
    /// PEM CA certificate trusted for the server's TLS besides the system's (e.g. the
    /// development CA `tessera serve` prints). Not `--ca`: `trust add --ca` is a trust's own.
    #[arg(long = "server-ca", global = true, env = "TESSERA_SERVER_CA_FILE", value_name = "FILE")]
    server_ca: Option<PathBuf>,
    /// The admin client's id.
    #[arg(long, global = true, env = "TESSERA_ADMIN_CLIENT_ID", value_name = "ID")]
    admin_client_id: Option<String>,
    /// Read the admin client's secret from this file (one line; `-`: standard input)
    /// instead of TESSERA_ADMIN_CLIENT_SECRET.
    #[arg(long, global = true, env = "TESSERA_ADMIN_CLIENT_SECRET_FILE", value_name = "FILE")]
    admin_client_secret_file: Option<PathBuf>,
}

/// The environment variable holding the admin client's secret (there is no option for it).
const SECRET_ENV: &str = "TESSERA_ADMIN_CLIENT_SECRET";

type Error = Box<dyn std::error::Error>;

impl RemoteArgs {
    /// Whether `--server` was given.
    pub fn is_remote(&self) -> bool {
        self.server.is_some()
    }

    /// A connection to the admin API; nothing is sent yet.
    pub fn connect(self) -> Result<Remote, Error> {
        let server = self.server.ok_or("--server is required")?;
        let issuer = Issuer::new(&server).map_err(|e| format!("--server {server}: {e}"))?;
        if !issuer.is_https() {
            return Err(format!("--server {server}: the admin client's secret goes only over https").into());
        }
        let id = self
            .admin_client_id
            .ok_or("--server needs the admin client's id: TESSERA_ADMIN_CLIENT_ID or --admin-client-id")?;
        let id = ClientId::new(id)?;
        let secret = match self.admin_client_secret_file {
            Some(path) => read_one_line(&path, "--admin-client-secret-file")?,
            None => std::env::var(SECRET_ENV).map_err(|_| {
                format!("--server needs the admin client's secret: {SECRET_ENV} or --admin-client-secret-file")
            })?,
        };
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        let mut cfg = ClientConfig::new(issuer.clone(), id, ClientSecret::new(secret)?);
        // Tokens for the admin API alone (RFC 8707), whatever else the client may get.
        cfg.resources = vec![Resource::new(ADMIN_RESOURCE)?];
        if let Some(path) = &self.server_ca {
            let pem = std::fs::read(path).map_err(|e| format!("--server-ca {}: {e}", path.display()))?;
            let ca =
                reqwest::Certificate::from_pem(&pem).map_err(|e| format!("--server-ca {}: {e}", path.display()))?;
            http = http.add_root_certificate(ca.clone());
            cfg = cfg.with_root_certificate(ca);
        }
        let http = http.build()?;
        let client = AuthorizedClient::new(http, TokenSource::new(cfg));
        Ok(Remote { client, issuer })
    }
}

/// The admin API of one server.
pub struct Remote {
    client: AuthorizedClient,
    issuer: Issuer,
}

impl Remote {
    /// Sends `method path` with `body` (JSON) and returns the answer's JSON (`Null` for 204);
    /// a refusal is an error saying why, in the server's words.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let url = self.issuer.url(path);
        let mut request = self.client.http().request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = self.client.send(request).await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no challenge")
                .to_owned();
            return Err(format!("{method} {url}: the admin API refused the token ({status}): {challenge}").into());
        }
        let problem = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(PROBLEM_JSON));
        let text = response.text().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if problem || !status.is_success() {
            let title = value["title"].as_str().unwrap_or(status.as_str());
            return Err(match value["detail"].as_str() {
                Some(detail) => format!("{title}: {detail}"),
                None => title.to_owned(),
            }
            .into());
        }
        Ok(value)
    }

    #[allow(missing_docs)]
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        self.call(Method::GET, path, None).await
    }
}

/// What a command cannot do over `--server`.
pub fn not_remote(what: &str) -> Error {
    format!("`{what}` works on the store only, not through --server (leave out --server and TESSERA_SERVER)").into()
}

/// The strings of a JSON array (a scope's resources, a rule's conditions), as the API sends
/// them; anything else is none.
pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(Value::as_str).collect()
}
