//! `tessera demo`: the seed scenario. Without a subcommand it runs everything in one process
//! (temporary data dir, loopback ports) and exits 0 when the greeting came back; the
//! subcommands run one piece each against a running `tessera serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use tessera_client::{
    AssertionKey, AuthorizedClient, ClientConfig, ClientCredentials as Login, ClientIdentity, DpopKey, TokenSource,
};
use tessera_guard::{ClientCredentials, Guard, GuardConfig, Mode};

use tessera_demo::{http_trusting, trusted_ca};

use tessera_types::{ClientId, ClientSecret, Issuer, Kid, Resource, ScopeSet};

use super::{CliResult, shutdown_signal};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(subcommand)]
    part: Option<Part>,
}

#[derive(Debug, Args)]
struct Authority {
    /// The authorization server (issuer URL).
    #[arg(long, default_value = "https://127.0.0.1:8443", value_parser = |s: &str| Issuer::new(s))]
    authority: Issuer,
    /// CA certificate to trust (the development CA of `tessera serve`).
    #[arg(long, default_value = "tessera-data/tls/dev-ca.pem")]
    ca: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Part {
    /// The gRPC Greeter (TLS, HTTP/2), SayHello requiring scope dataEventRecords; follows the
    /// server's revocation feed.
    Greeter {
        #[command(flatten)]
        authority: Authority,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:7179")]
        listen: SocketAddr,
        /// The API's own client secret, for introspection of reference tokens and the
        /// revocation feed (default: the sample secret of rs_dataEventRecordsApi in
        /// examples/seed.toml).
        #[arg(long, env = "TESSERA_DEMO_API_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = secret)]
        api_secret: Option<ClientSecret>,
        /// Server certificate and key (default: the dev certificate next to --ca).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Private key of --cert (PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// The console client: token, then SayHello.
    Client {
        #[command(flatten)]
        authority: Authority,
        /// The Greeter to call.
        #[arg(long, default_value = "https://localhost:7179")]
        greeter: String,
        /// The client to log in as (registered in examples/seed.toml).
        #[arg(long, default_value = "CC", value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        #[command(flatten)]
        secret: LoginSecret,
        /// Authenticate with private_key_jwt, signing assertions with this private key (PEM)
        /// instead of sending a secret (default for CC_private_key_jwt: the sample key
        /// examples/keys/cc-private-key-jwt.pem).
        #[arg(long, value_name = "PEM")]
        private_key: Option<PathBuf>,
        /// The key id the public half of --private-key is registered under (default: its RFC
        /// 7638 thumbprint, the id the server gives a registered key without one).
        #[arg(long, requires = "private_key", value_parser = |s: &str| Kid::new(s))]
        kid: Option<Kid>,
        /// Authenticate with a client certificate in the TLS handshake (mutual TLS, RFC 8705:
        /// self_signed_tls_client_auth or tls_client_auth): one PEM holding the certificate
        /// (then any intermediates) and its private key, as `curl --cert` takes it (default for
        /// CC_mtls: the sample examples/keys/cc-mtls.pem).
        #[arg(long, value_name = "PEM", conflicts_with = "private_key")]
        client_cert: Option<PathBuf>,
        /// Scope to request.
        #[arg(long, default_value = "dataEventRecords", value_parser = |s: &str| ScopeSet::parse(s))]
        scope: ScopeSet,
        /// Ask for DPoP-bound tokens (RFC 9449) with a key generated for this run, and send
        /// each call with a proof (default for CC_dpop, whose token requests need one).
        #[arg(long)]
        dpop: bool,
    },
    /// The REST API: GET /weatherforecast for audience and scope api1; validates JWTs locally
    /// and follows the server's revocation feed.
    Api {
        #[command(flatten)]
        authority: Authority,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:7180")]
        listen: SocketAddr,
        /// The API's own client secret (client api1), for the revocation feed (default: the
        /// sample secret of api1 in examples/seed.toml).
        #[arg(long, env = "TESSERA_DEMO_REST_API_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = secret)]
        api_secret: Option<ClientSecret>,
        /// Server certificate and key (default: the dev certificate next to --ca).
        #[arg(long)]
        cert: Option<PathBuf>,
        /// Private key of --cert (PEM).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// The background worker: calls the REST API every N seconds until SIGTERM/SIGINT.
    Worker {
        #[command(flatten)]
        authority: Authority,
        /// The REST API endpoint to call.
        #[arg(long, default_value = "https://localhost:7180/weatherforecast")]
        url: String,
        /// Seconds between calls.
        #[arg(long, default_value_t = 5)]
        every_secs: u64,
        /// The client to log in as (registered in examples/seed.toml).
        #[arg(long, default_value = "background-service", value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
        #[command(flatten)]
        secret: LoginSecret,
    },
}

/// The secret a demo client logs in with.
#[derive(Debug, Args)]
struct LoginSecret {
    /// The client's secret (default: its sample secret in examples/seed.toml).
    #[arg(long, env = "TESSERA_DEMO_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = secret)]
    client_secret: Option<ClientSecret>,
}

/// The secret given, else the sample secret of `client_id` in `examples/seed.toml`.
fn secret_or_sample(given: Option<ClientSecret>, client_id: &ClientId) -> Result<ClientSecret, String> {
    given
        .or_else(|| tessera_demo::sample_secret(client_id))
        .ok_or_else(|| format!("examples/seed.toml has no secret for {client_id}: give --client-secret"))
}

/// How the console client logs in: with `--client-cert` (mutual TLS) or `--private-key`
/// (private_key_jwt), else a secret given, else the sample certificate or key of a seed client
/// that has one, else its sample secret.
fn login(
    client_id: &ClientId,
    secret: LoginSecret,
    private_key: Option<PathBuf>,
    kid: Option<Kid>,
    client_cert: Option<PathBuf>,
) -> Result<Login, Box<dyn std::error::Error>> {
    if let Some(path) = client_cert {
        let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let identity = ClientIdentity::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Login::Certificate(identity));
    }
    if let Some(path) = private_key {
        let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = AssertionKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Login::PrivateKey(match kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        }));
    }
    if secret.client_secret.is_none()
        && let Some(key) = tessera_demo::sample_key(client_id)
    {
        return Ok(Login::PrivateKey(key));
    }
    if secret.client_secret.is_none()
        && let Some(identity) = tessera_demo::sample_certificate(client_id)
    {
        return Ok(Login::Certificate(identity));
    }
    Ok(Login::Secret(secret_or_sample(secret.client_secret, client_id)?))
}

fn secret(s: &str) -> Result<ClientSecret, tessera_types::InvalidValue> {
    ClientSecret::new(s)
}

fn cert_pair(ca: &Path, cert: Option<PathBuf>, key: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let dir = ca.parent().map(PathBuf::from).unwrap_or_default();
    (cert.unwrap_or_else(|| dir.join("dev-cert.pem")), key.unwrap_or_else(|| dir.join("dev-key.pem")))
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
            let api = ClientId::new("rs_dataEventRecordsApi")?;
            let api_secret = secret_or_sample(api_secret, &api)?;
            let resource = Resource::new(api.as_str())?;
            let creds = ClientCredentials::new(api, api_secret);
            let guard = Guard::new(
                GuardConfig::new(a.authority, resource, Mode::Auto(creds.clone()))
                    .with_http_client(http_trusting(&a.ca)?)
                    .follow_revocations(creds),
            )?;
            guard.start_feed();
            let (cert, key) = cert_pair(&a.ca, cert, key);
            let svc = tessera_demo::greeter(listen, &cert, &key, guard).await?;
            println!("Greeter listening on {} (GET / answers \"GRPC service running...\")", svc.url());
            shutdown_signal().await;
            svc.stop().await;
        }
        Part::Api { authority: a, listen, api_secret, cert, key } => {
            let api = ClientId::new("api1")?;
            let api_secret = secret_or_sample(api_secret, &api)?;
            let cfg = GuardConfig::new(a.authority, Resource::new(api.as_str())?, Mode::Jwt)
                .follow_revocations(ClientCredentials::new(api, api_secret));
            let guard = Guard::new(cfg.with_http_client(http_trusting(&a.ca)?))?;
            guard.start_feed();
            let (cert, key) = cert_pair(&a.ca, cert, key);
            let svc = tessera_demo::weather_api(listen, &cert, &key, guard).await?;
            println!("REST API listening on {}/weatherforecast", svc.url());
            shutdown_signal().await;
            svc.stop().await;
        }
        Part::Client { authority: a, greeter, client_id, secret, private_key, kid, client_cert, scope, dpop } => {
            // A certificate-bound token (RFC 8705 §3) is accepted only over a connection that
            // presents the certificate: the Greeter sees it too.
            let presented = match &client_cert {
                Some(path) => Some(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?),
                None => tessera_demo::sample_certificate_pem(&client_id).map(|pem| pem.as_bytes().to_vec()),
            };
            let dpop = dpop || client_id.as_str() == tessera_demo::DPOP_CLIENT;
            let login = login(&client_id, secret, private_key, kid, client_cert)?;
            let config = ClientConfig::with_credentials(a.authority, client_id, login).scope(scope);
            // A certificate is presented by an HTTP client the source builds itself; the
            // other logins share one trusting the CA.
            let config = match &config.credentials {
                Login::Certificate(_) => config.with_root_certificate(trusted_ca(&a.ca)?),
                _ => config.with_http_client(http_trusting(&a.ca)?),
            };
            let config = if dpop { config.with_dpop(DpopKey::generate()?) } else { config };
            let source = TokenSource::new(config);
            println!("{}", tessera_demo::greet_presenting(&greeter, &a.ca, source, presented.as_deref()).await?);
        }
        Part::Worker { authority: a, url, every_secs, client_id, secret } => {
            let secret = secret_or_sample(secret.client_secret, &client_id)?;
            let http = http_trusting(&a.ca)?;
            let source = TokenSource::new(
                ClientConfig::new(a.authority, client_id, secret)
                    .scope(ScopeSet::parse("api1")?)
                    .with_http_client(http.clone()),
            );
            let calls = tessera_demo::worker(
                AuthorizedClient::new(http, source),
                url,
                Duration::from_secs(every_secs.max(1)),
                shutdown_signal(),
            )
            .await;
            println!("worker stopped after {calls} successful calls");
        }
    }
    Ok(())
}
