//! `tessera serve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tessera_server::{Deps, FileConfig, Overrides, Settings, Transport};

use super::CliResult;

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<String>,
    /// Issuer URL; derived from the listen address when absent.
    #[arg(long, env = "TESSERA_ISSUER")]
    issuer: Option<String>,
    /// PEM certificate chain (with --tls-key); without them a development certificate is used.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Tokens and secrets then cross the network in clear: only behind a
    /// TLS-terminating proxy on the same host.
    #[arg(long)]
    http: bool,
    /// Signing algorithm(s): ES256 (default), RS256, PS256, EdDSA. The first signs tokens.
    #[arg(long = "signing-alg")]
    signing_algs: Vec<String>,
}

impl ServeArgs {
    pub fn overrides(self, base: Overrides) -> Overrides {
        Overrides {
            listen: self.listen,
            issuer: self.issuer,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            http: self.http,
            signing_algs: self.signing_algs,
            ..base
        }
    }
}

pub async fn run(overrides: Overrides, file: FileConfig) -> CliResult {
    let settings = Settings::resolve(overrides, file)?;
    if settings.transport == Transport::PlainHttp {
        eprintln!("WARNING: serving plain HTTP (--http). Client secrets and access tokens cross the network in clear.");
        eprintln!("WARNING: use this only behind a TLS-terminating proxy on the same host.");
    }
    let running = tessera_server::start(settings.clone(), Deps::system()).await?;
    for (client_id, secret) in &running.generated_secrets {
        println!("generated secret for client {client_id} (shown once, store it now): {}", secret.expose());
    }
    println!("tessera listening on {} (HTTP/2 and HTTP/1.1)", running.addr);
    println!("issuer: {}", running.issuer);
    println!("discovery: {}/.well-known/openid-configuration", running.issuer);
    println!("data dir: {}", settings.data_dir.display());
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

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
