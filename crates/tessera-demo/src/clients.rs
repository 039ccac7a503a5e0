//! The console client and the background worker.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tessera_client::{AuthorizedClient, BearerLayer, ClientError, TokenSource};
use tessera_greet::HelloRequest;
use tessera_greet::greeter_client::GreeterClient;
use tessera_types::ErrorCode;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// What went wrong, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// No token.
    #[error("{0}")]
    Token(String),
    /// The API refused or failed.
    #[error("{0}")]
    Api(String),
}

fn explain(e: &ClientError) -> String {
    match e {
        ClientError::Refused { error: ErrorCode::InvalidClient, .. } => {
            format!(
                "the authorization server refused the client credentials (invalid_client): check the client id and its secret, key or certificate [{e}]"
            )
        }
        ClientError::Refused { error: ErrorCode::InvalidScope, .. } => {
            format!("the client may not request that scope (invalid_scope) [{e}]")
        }
        ClientError::Unreachable(_) => format!("cannot reach the authorization server: is it running? [{e}]"),
        _ => e.to_string(),
    }
}

/// An HTTPS client trusting `ca` (a PEM file, such as the development CA of `tessera
/// serve`) besides the system's roots.
pub fn http_trusting(ca: &Path) -> Result<reqwest::Client, DemoError> {
    let cert = trusted_ca(ca)?;
    reqwest::Client::builder().add_root_certificate(cert).build().map_err(|e| DemoError::Api(e.to_string()))
}

/// The CA certificate in `ca` (PEM), for a token source that builds its own HTTP client (a
/// client certificate config: [`tessera_client::ClientConfig::with_root_certificate`]).
pub fn trusted_ca(ca: &Path) -> Result<reqwest::Certificate, DemoError> {
    let pem = std::fs::read(ca).map_err(|e| DemoError::Api(format!("{}: {e}", ca.display())))?;
    reqwest::Certificate::from_pem(&pem).map_err(|e| DemoError::Api(format!("{}: {e}", ca.display())))
}

/// An HTTP/2 TLS channel to the Greeter at `url`, trusting `ca`.
pub async fn tls_channel(url: &str, ca: &Path) -> Result<Channel, DemoError> {
    tls_channel_presenting(url, ca, None).await
}

/// As [`tls_channel`], presenting the client certificate in `identity_pem` (certificate and
/// key) when given: a token bound to it (RFC 8705 §3) is accepted only over such a channel.
pub async fn tls_channel_presenting(url: &str, ca: &Path, identity_pem: Option<&[u8]>) -> Result<Channel, DemoError> {
    let pem = std::fs::read(ca).map_err(|e| DemoError::Api(format!("{}: {e}", ca.display())))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)).domain_name("localhost");
    if let Some(identity) = identity_pem {
        tls = tls.identity(tonic::transport::Identity::from_pem(identity, identity));
    }
    Endpoint::from_shared(url.to_owned())
        .map_err(|e| DemoError::Api(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| DemoError::Api(e.to_string()))?
        .connect()
        .await
        .map_err(|e| DemoError::Api(format!("cannot reach the Greeter at {url}: {e}")))
}

/// Calls SayHello over a TLS channel to `url` trusting `ca`, with the bearer layer of
/// `source` on the call.
pub async fn call_greeter(url: &str, ca: &Path, source: TokenSource, name: &str) -> Result<String, DemoError> {
    call_greeter_on(tls_channel(url, ca).await?, url, source, name).await
}

/// SayHello over `channel`, with the bearer layer of `source` on the call.
async fn call_greeter_on(channel: Channel, url: &str, source: TokenSource, name: &str) -> Result<String, DemoError> {
    // The origin is the channel's: DPoP proofs name the call's URL (RFC 9449 §4.2 `htu`).
    let svc = tower::ServiceBuilder::new().layer(BearerLayer::new(source.clone()).with_origin(url)).service(channel);
    let mut client = GreeterClient::new(svc);
    match client.say_hello(HelloRequest { name: name.into() }).await {
        Ok(r) => Ok(r.into_inner().message),
        Err(status) => {
            // A token that could not be had surfaces as the transport error it was wrapped in.
            if let Some(e) = std::error::Error::source(&status).and_then(|s| s.downcast_ref::<ClientError>()) {
                return Err(DemoError::Token(explain(e)));
            }
            Err(DemoError::Api(match status.code() {
                tonic::Code::Unauthenticated => {
                    format!("the Greeter rejected the token (Unauthenticated): {}", status.message())
                }
                tonic::Code::PermissionDenied => {
                    format!("the token lacks the scope the Greeter requires (PermissionDenied): {}", status.message())
                }
                tonic::Code::Unavailable => format!("the Greeter is unavailable: {}", status.message()),
                _ => format!("{status}"),
            }))
        }
    }
}

/// The console client of the seed: get a token, call SayHello, return `Greeting: ...`.
pub async fn greet(greeter_url: &str, ca: &Path, source: TokenSource) -> Result<String, DemoError> {
    greet_presenting(greeter_url, ca, source, None).await
}

/// As [`greet`], presenting the client certificate in `identity_pem` to the Greeter when
/// given: what a client whose tokens are bound to its certificate must do.
pub async fn greet_presenting(
    greeter_url: &str,
    ca: &Path,
    source: TokenSource,
    identity_pem: Option<&[u8]>,
) -> Result<String, DemoError> {
    // Fetch the token first so its failures read as token failures.
    source.token().await.map_err(|e| DemoError::Token(explain(&e)))?;
    let channel = tls_channel_presenting(greeter_url, ca, identity_pem).await?;
    let message = call_greeter_on(channel, greeter_url, source, "GreeterClient").await?;
    Ok(format!("Greeting: {message}"))
}

/// The seed's DataSyncService: calls `url` every `every`, logging failures and carrying on,
/// its token refreshed transparently; returns how many calls succeeded when `shutdown` fires.
pub async fn worker(client: AuthorizedClient, url: String, every: Duration, shutdown: impl Future<Output = ()>) -> u64 {
    let mut ok = 0;
    let mut tick = tokio::time::interval(every);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!(ok, "worker stopping");
                return ok;
            }
            _ = tick.tick() => {
                match client.send(client.http().get(&url)).await {
                    Ok(r) if r.status().is_success() => {
                        ok += 1;
                        let body = r.text().await.unwrap_or_default();
                        tracing::info!(%body, "worker call succeeded");
                    }
                    Ok(r) => tracing::warn!(status = %r.status(), "worker call refused; will try again"),
                    Err(e) => tracing::warn!(error = %explain(&e), "worker call failed; will try again"),
                }
            }
        }
    }
}
