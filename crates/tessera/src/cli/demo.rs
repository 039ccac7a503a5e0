//! `tessera demo`: the seed scenario. Without a subcommand it runs everything in one process
//! (temporary data dir, loopback ports) and exits 0 when the greeting came back; the
//! subcommands run one piece each against a running `tessera serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use tessera_client::{AuthorizedClient, ClientConfig, TokenSource};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, Mode};
use tessera_types::{ClientId, ClientSecret, Issuer, Resource, ScopeSet};

use super::{CliResult, Sensitive};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    part: Option<Part>,
}

#[derive(Debug, Args)]
struct Authority {
    /// The authorization server (issuer URL).
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    authority: String,
    /// CA certificate to trust (the development CA of `tessera serve`).
    #[arg(long, default_value = "tessera-data/tls/dev-ca.pem")]
    ca: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Part {
    /// The gRPC Greeter (TLS, HTTP/2), SayHello requiring scope dataEventRecords.
    Greeter {
        #[command(flatten)]
        authority: Authority,
        #[arg(long, default_value = "127.0.0.1:7179")]
        listen: SocketAddr,
        /// The API's own client secret, for introspection of reference tokens.
        #[arg(
            long,
            env = "TESSERA_API_SECRET",
            hide_env_values = true,
            default_value = "rs_dataEventRecordsApi_secret"
        )]
        api_secret: Sensitive,
        /// Server certificate and key (default: the dev certificate next to --ca).
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// The console client: token, then SayHello.
    Client {
        #[command(flatten)]
        authority: Authority,
        #[arg(long, default_value = "https://localhost:7179")]
        greeter: String,
        #[arg(long, default_value = "CC")]
        client_id: String,
        #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true, default_value = "cc_secret")]
        client_secret: Sensitive,
        #[arg(long, default_value = "dataEventRecords")]
        scope: String,
    },
    /// The REST API: GET /weatherforecast for audience and scope api1.
    Api {
        #[command(flatten)]
        authority: Authority,
        #[arg(long, default_value = "127.0.0.1:7180")]
        listen: SocketAddr,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// The background worker: calls the REST API every N seconds until SIGTERM/SIGINT.
    Worker {
        #[command(flatten)]
        authority: Authority,
        #[arg(long, default_value = "https://localhost:7180/weatherforecast")]
        url: String,
        #[arg(long, default_value_t = 5)]
        every_secs: u64,
        #[arg(long, default_value = "background-service")]
        client_id: String,
        #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true, default_value = "service-secret-here")]
        client_secret: Sensitive,
    },
}

fn http(ca: &PathBuf) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    Ok(reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem)?).build()?)
}

fn cert_pair(ca: &PathBuf, cert: Option<PathBuf>, key: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let dir = ca.parent().map(PathBuf::from).unwrap_or_default();
    (cert.unwrap_or_else(|| dir.join("dev-cert.pem")), key.unwrap_or_else(|| dir.join("dev-key.pem")))
}

async fn until_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub async fn run(args: DemoArgs) -> CliResult {
    let Some(part) = args.part else {
        let dir = std::env::temp_dir().join(format!("tessera-demo-{}", std::process::id()));
        let result = tessera_demo::demo(&dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    };
    match part {
        Part::Greeter { authority: a, listen, api_secret, cert, key } => {
            let api = "rs_dataEventRecordsApi";
            let creds = ClientCredentials::new(ClientId::new(api)?, ClientSecret::new(api_secret.expose())?);
            let guard = Guard::new(
                GuardConfig::new(Issuer::new(&a.authority)?, Resource::new(api)?, Mode::Auto(creds))
                    .with_http_client(http(&a.ca)?),
            )?;
            let (cert, key) = cert_pair(&a.ca, cert, key);
            let svc = tessera_demo::greeter(listen, &cert, &key, guard).await?;
            println!("Greeter listening on {} (GET / answers \"GRPC service running...\")", svc.url());
            until_signal().await;
            svc.stop().await;
        }
        Part::Api { authority: a, listen, cert, key } => {
            let cfg = GuardConfig::new(Issuer::new(&a.authority)?, Resource::new("api1")?, Mode::Jwt);
            let guard = Guard::new(cfg.with_http_client(http(&a.ca)?))?;
            let (cert, key) = cert_pair(&a.ca, cert, key);
            let svc = tessera_demo::weather_api(listen, &cert, &key, guard).await?;
            println!("REST API listening on {}/weatherforecast", svc.url());
            until_signal().await;
            svc.stop().await;
        }
        Part::Client { authority: a, greeter, client_id, client_secret, scope } => {
            let source = TokenSource::new(
                ClientConfig::new(
                    Issuer::new(&a.authority)?,
                    ClientId::new(client_id)?,
                    ClientSecret::new(client_secret.expose())?,
                )
                .scope(ScopeSet::parse(&scope)?)
                .with_http_client(http(&a.ca)?),
            );
            println!("{}", tessera_demo::greet(&greeter, &a.ca, source).await?);
        }
        Part::Worker { authority: a, url, every_secs, client_id, client_secret } => {
            let http = http(&a.ca)?;
            let source = TokenSource::new(
                ClientConfig::new(
                    Issuer::new(&a.authority)?,
                    ClientId::new(client_id)?,
                    ClientSecret::new(client_secret.expose())?,
                )
                .scope(ScopeSet::parse("api1")?)
                .with_http_client(http.clone()),
            );
            let calls = tessera_demo::worker(
                AuthorizedClient::new(http, source),
                url,
                Duration::from_secs(every_secs.max(1)),
                until_signal(),
            )
            .await;
            println!("worker stopped after {calls} successful calls");
        }
    }
    Ok(())
}
