//! A reqwest wrapper for REST APIs: the bearer token on every request, and one transparent
//! retry with a fresh token when the API answers 401 `invalid_token` (RFC 6750 §3.1).

use tessera_types::rfc6750::BearerError;

use crate::{ClientError, Token, TokenSource};

/// A reqwest client that authenticates its requests.
#[derive(Clone)]
pub struct AuthorizedClient {
    http: reqwest::Client,
    source: TokenSource,
}

impl AuthorizedClient {
    /// Wraps `http`, authenticating with `source`.
    pub fn new(http: reqwest::Client, source: TokenSource) -> Self {
        Self { http, source }
    }

    /// The underlying client, to build requests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    #[allow(missing_docs)]
    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// Sends `request` with the token: `Bearer`, or `DPoP` with a fresh proof for this
    /// request when the token is bound to the source's key (RFC 9449 §7.1). A 401 whose
    /// `WWW-Authenticate` says `invalid_token` (revoked, expired early, keys rotated) makes
    /// one retry with a new token; a request whose body cannot be replayed is not retried.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let retry = request.try_clone();
        let token = self.source.token().await?;
        let response = self.send_with(request, &token).await?;
        // RFC 6750 §3.1 (and RFC 9449 §7.1 for DPoP challenges): the code is the challenge's
        // `error` attribute, not any mention of it.
        let invalid_token = response.status() == reqwest::StatusCode::UNAUTHORIZED
            && response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| BearerError::from_challenge(v) == Some(BearerError::InvalidToken));
        match (invalid_token, retry) {
            (true, Some(again)) => {
                self.source.invalidate(&token.access_token);
                let token = self.source.token().await?;
                self.send_with(again, &token).await
            }
            _ => Ok(response),
        }
    }

    async fn send_with(
        &self,
        request: reqwest::RequestBuilder,
        token: &Token,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = request.build().map_err(|e| ClientError::Protocol(format!("request: {e}")))?;
        let (authorization, proof) = self.source.authorize(token, request.method().as_str(), request.url().as_str())?;
        let headers = request.headers_mut();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            authorization.parse().map_err(|_| ClientError::Protocol("the token is not a header value".into()))?,
        );
        if let Some(proof) = proof {
            headers.insert(
                "DPoP",
                proof.parse().map_err(|_| ClientError::Protocol("the proof is not a header value".into()))?,
            );
        }
        self.http.execute(request).await.map_err(|e| ClientError::Unreachable(format!("API: {e}")))
    }
}
