//! The seed scenario's DPoP client (RFC 9449) and what a thief can do with its token: calls
//! made with a token as given, so that the scenario and the tests can present a stolen token
//! the ways a thief would and see the APIs' exact answers.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_client::DpopKey;
use tessera_greet::HelloRequest;
use tessera_greet::greeter_client::GreeterClient;

use crate::{DemoError, tls_channel};

/// The seed client whose token requests must carry a DPoP proof (`require_dpop`), so that all
/// its tokens are bound to its key.
pub const DPOP_CLIENT: &str = "CC_dpop";

/// How a token goes with a call.
#[derive(Debug, Clone, Copy)]
pub enum Presenting<'a> {
    /// `Authorization: Bearer`, no proof: what anyone holding the token can send.
    Bearer,
    /// `Authorization: DPoP` with a fresh proof for this call (RFC 9449 §4.2, with `ath`)
    /// signed by this key: the owner's, or a thief's own.
    Dpop(&'a DpopKey),
}

/// What a protected API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The call was served.
    Served,
    /// Refused over HTTP: the status and the `WWW-Authenticate` challenge.
    Http {
        #[allow(missing_docs)]
        status: u16,
        #[allow(missing_docs)]
        challenge: String,
    },
    /// Refused over gRPC.
    Grpc {
        #[allow(missing_docs)]
        code: tonic::Code,
        #[allow(missing_docs)]
        message: String,
    },
}

impl Answer {
    /// The `error` attribute of an HTTP challenge (RFC 6750 §3, RFC 9449 §7.1). The guard
    /// quotes descriptions without `"`, so `error="` cannot occur inside one.
    pub fn error(&self) -> Option<&str> {
        let Self::Http { challenge, .. } = self else { return None };
        let (_, rest) = challenge.split_once("error=\"")?;
        rest.split('"').next()
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Served => write!(f, "served"),
            Self::Http { status, challenge } => write!(f, "{status}, WWW-Authenticate: {challenge}"),
            Self::Grpc { code, message } => write!(f, "{code:?}: {message}"),
        }
    }
}

/// Seconds since the epoch: a proof's `iat`.
fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// The header values carrying `token` for a call `method url`.
fn authorization(
    token: &str,
    how: Presenting<'_>,
    method: &str,
    url: &str,
) -> Result<(String, Option<String>), DemoError> {
    match how {
        Presenting::Bearer => Ok((format!("Bearer {token}"), None)),
        Presenting::Dpop(key) => {
            let proof = key.proof(method, url, now(), Some(token)).map_err(|e| DemoError::Token(e.to_string()))?;
            Ok((format!("DPoP {token}"), Some(proof)))
        }
    }
}

/// `GET url` with `token` presented as `how`.
pub async fn rest_with_token(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    how: Presenting<'_>,
) -> Result<Answer, DemoError> {
    let (authorization, proof) = authorization(token, how, "GET", url)?;
    let mut request = http.get(url).header(reqwest::header::AUTHORIZATION, authorization);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.map_err(|e| DemoError::Api(format!("cannot reach {url}: {e}")))?;
    if response.status().is_success() {
        return Ok(Answer::Served);
    }
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Answer::Http { status: response.status().as_u16(), challenge })
}

/// SayHello on the Greeter at `greeter_url` (trusting `ca`) with `token` presented as `how`.
pub async fn greeter_with_token(
    greeter_url: &str,
    ca: &Path,
    token: &str,
    how: Presenting<'_>,
) -> Result<Answer, DemoError> {
    // A gRPC call is a POST to the method's path (RFC 9449 §4.2 `htm`, `htu`).
    let url = format!("{}{}", greeter_url.trim_end_matches('/'), tessera_greet::SAY_HELLO);
    let (authorization, proof) = authorization(token, how, "POST", &url)?;
    let value = |s: String| s.parse().map_err(|_| DemoError::Api("not a header value".into()));
    let mut call = tonic::Request::new(HelloRequest { name: "GreeterClient".into() });
    call.metadata_mut().insert("authorization", value(authorization)?);
    if let Some(proof) = proof {
        call.metadata_mut().insert("dpop", value(proof)?);
    }
    let mut client = GreeterClient::new(tls_channel(greeter_url, ca).await?);
    match client.say_hello(call).await {
        Ok(_) => Ok(Answer::Served),
        Err(status) => Ok(Answer::Grpc { code: status.code(), message: status.message().to_owned() }),
    }
}

/// The `cnf.jkt` claim of a JWT access token (RFC 9449 §6.1), read without verifying it: the
/// client only shows which key its token is bound to.
pub fn token_jkt(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["cnf"]["jkt"].as_str().map(str::to_owned)
}
