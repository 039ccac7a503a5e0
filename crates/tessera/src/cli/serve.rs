//! `tessera serve`.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tessera_server::{Deps, FileConfig, Overrides, Settings, Transport};
use tessera_types::{ClientId, ClientSecret};

use super::lock::DataDirLock;
use super::{CliResult, shutdown_signal};
use crate::scheduling::WorkerScheduling;

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: super::StoreArgs,
    /// Address to listen on, IP:PORT (port 0 picks a free port). Default: the configuration
    /// file's `listen`, else 127.0.0.1:8443.
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<String>,
    /// Serve `GET /metrics` (Prometheus text format) in plain HTTP on this IP:PORT, apart
    /// from the public listener; `off` (the default) serves and records no metrics.
    #[arg(long, env = "TESSERA_METRICS_LISTEN", value_name = "IP:PORT")]
    metrics_listen: Option<String>,
    /// Issuer URL; derived from the listen address when absent.
    #[arg(long, env = "TESSERA_ISSUER")]
    issuer: Option<String>,
    /// PEM certificate chain (with --tls-key); without them a development certificate is used.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key; refused unless only its owner may read it (chmod 600).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Tokens and secrets then cross the network in clear: only behind a
    /// TLS-terminating proxy on the same host.
    #[arg(long)]
    http: bool,
    /// Signing algorithm(s): ES256 (default), RS256, PS256, EdDSA. The first signs tokens.
    #[arg(long = "signing-alg")]
    signing_algs: Vec<String>,
    /// How the request threads are scheduled (Linux): `batch` (SCHED_BATCH: a request that
    /// arrives waits for the running thread to block instead of preempting it) or `normal`.
    #[arg(long, env = "TESSERA_WORKER_SCHEDULING", value_enum, default_value_t = WorkerScheduling::Batch)]
    pub worker_scheduling: WorkerScheduling,
}

impl ServeArgs {
    /// The store options with the listener's over them, and the configuration file.
    pub fn resolve(self, provenance: super::Provenance) -> Result<(Overrides, FileConfig), Box<dyn std::error::Error>> {
        let (base, file) = self.store.resolve(provenance)?;
        let overrides = Overrides {
            listen: self.listen,
            metrics_listen: self.metrics_listen,
            issuer: self.issuer,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            http: self.http,
            signing_algs: self.signing_algs,
            ..base
        };
        Ok((overrides, file))
    }
}

/// Where secrets generated for config-seeded clients go: never stdout (journald, container
/// logs), but a 0600 file in the data dir.
pub const GENERATED_SECRETS_FILE: &str = "generated-secrets.txt";

pub async fn run(overrides: Overrides, file: FileConfig) -> CliResult {
    let settings = Settings::resolve(overrides, file)?;
    // One server per SQLite data dir; held until the process ends.
    let _lock = match settings.database_url {
        None => Some(DataDirLock::acquire(&settings.data_dir)?),
        Some(_) => None,
    };
    if settings.transport == Transport::PlainHttp {
        eprintln!("WARNING: serving plain HTTP (--http). Client secrets and access tokens cross the network in clear.");
        eprintln!("WARNING: use this only behind a TLS-terminating proxy on the same host.");
    }
    let running = tessera_server::start(settings.clone(), Deps::system()).await?;
    if !running.generated_secrets.is_empty() {
        let path = save_generated_secrets(&settings.data_dir, &running.generated_secrets)?;
        let ids: Vec<String> = running.generated_secrets.iter().map(|(id, _)| id.to_string()).collect();
        println!(
            "generated secrets of config-seeded clients {} appended to {} (mode 0600): move them to your secret \
             store, then delete the file",
            ids.join(", "),
            path.display()
        );
    }
    println!("tessera listening on {} (HTTP/2 and HTTP/1.1)", running.addr);
    println!("issuer: {}", running.issuer);
    println!("discovery: {}/.well-known/openid-configuration", running.issuer);
    println!("data dir: {}", settings.data_dir.display());
    if let Some(at) = running.metrics_addr {
        println!("metrics: http://{at}/metrics");
    }
    if let Some(ca) = &running.dev_ca {
        println!("development certificate authority: {}", ca.display());
        println!("  try: curl --cacert {} {}/.well-known/openid-configuration", ca.display(), running.issuer);
    }
    shutdown_signal().await;
    eprintln!("shutting down: finishing requests in flight");
    running.shutdown(Duration::from_secs(10)).await?;
    eprintln!("stopped");
    Ok(())
}

/// Appends `client_id<TAB>secret` lines to the 0600 secrets file in the data dir.
fn save_generated_secrets(data_dir: &Path, secrets: &[(ClientId, ClientSecret)]) -> Result<PathBuf, String> {
    let path = data_dir.join(GENERATED_SECRETS_FILE);
    let io = |e: std::io::Error| format!("saving generated client secrets to {}: {e}", path.display());
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(data_dir).map_err(io)?;
    let mut f = OpenOptions::new().append(true).create(true).mode(0o600).open(&path).map_err(io)?;
    // An older file with looser permissions is tightened before a secret goes in.
    f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    let mut text = String::new();
    for (client_id, secret) in secrets {
        text.push_str(&format!("{client_id}\t{}\n", secret.expose()));
    }
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(path)
}
