//! A reqwest wrapper for REST APIs: the bearer token on every request, and one transparent
//! retry with a fresh token when the API answers 401 `invalid_token` (RFC 6750 §3.1).

use tessera_types::ErrorCode;
use tessera_types::rfc6750::{BearerError, challenge_error};

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
    ///
    /// An API that requires its nonce in DPoP proofs (RFC 9449 §9) is followed: the nonce of
    /// every answer's `DPoP-Nonce` is kept for the next proofs to that origin, and a 401
    /// `use_dpop_nonce` makes one retry carrying it.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let mut retry = request.try_clone();
        let mut token = self.source.token().await?;
        let mut response = self.send_with(request, &token).await?;
        if Self::challenged(&response, ErrorCode::UseDpopNonce.as_str()) {
            if let Some(again) = retry.take() {
                retry = again.try_clone();
                response = self.send_with(again, &token).await?;
            }
        }
        if Self::challenged(&response, BearerError::InvalidToken.as_str()) {
            if let Some(again) = retry {
                self.source.invalidate(&token.access_token);
                token = self.source.token().await?;
                return self.send_with(again, &token).await;
            }
        }
        Ok(response)
    }

    /// A 401 whose challenge's `error` attribute is `code` (RFC 6750 §3.1, RFC 9449 §7.1 and
    /// §9): the attribute, not any mention of the code.
    fn challenged(response: &reqwest::Response, code: &str) -> bool {
        response.status() == reqwest::StatusCode::UNAUTHORIZED
            && response
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| challenge_error(v) == Some(code))
    }

    async fn send_with(
        &self,
        request: reqwest::RequestBuilder,
        token: &Token,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = request.build().map_err(|e| ClientError::Protocol(format!("request: {e}")))?;
        let url = request.url().to_string();
        let (authorization, proof) = self.source.authorize(token, request.method().as_str(), &url)?;
        let dpop = proof.is_some();
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
        let response = self.http.execute(request).await.map_err(|e| ClientError::Unreachable(format!("API: {e}")))?;
        if dpop {
            self.source.remember_dpop_nonce(&url, response.headers());
        }
        Ok(response)
    }
}
