//! One bounded call to the authority: the HTTP client that follows no redirect, the total
//! timeout on every request, the https rule, and the client credentials in Basic form.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_types::{ClientId, ClientSecret};

use crate::AuthorityCalls;

/// The HTTP side of a service calling the authority: one client, the per-request timeout, the
/// https rule.
#[derive(Debug, Clone)]
pub struct AuthorityClient {
    client: reqwest::Client,
    timeout: Duration,
    allow_http: bool,
}

impl AuthorityClient {
    /// The client `calls` names, or one of our own bounded by its timeouts that follows no
    /// redirect. Fails only if the TLS backend cannot be initialised.
    pub fn new(calls: &AuthorityCalls) -> Result<Self, reqwest::Error> {
        let client = match &calls.http {
            Some(c) => c.clone(),
            None => reqwest::Client::builder()
                .connect_timeout(calls.connect_timeout)
                .timeout(calls.request_timeout)
                // A redirect would carry credentials (a client secret, the caller's token) on
                // to a URL nobody configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        };
        Ok(Self { client, timeout: calls.request_timeout, allow_http: calls.allow_insecure_http })
    }

    /// Whether `http://` URLs are tolerated ([`AuthorityCalls::allow_insecure_http`]).
    pub fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// A GET of `url`, to be sent with [`Self::send`].
    pub fn get(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.client.get(url.clone())
    }

    /// A POST to `url`, to be sent with [`Self::send`].
    pub fn post(&self, url: &reqwest::Url) -> reqwest::RequestBuilder {
        self.client.post(url.clone())
    }

    /// Sends `req` (built for `url`) within the request timeout. A 3xx, or an answer from
    /// elsewhere than `url` (a client passed in followed a redirect), is a [`SendError::Redirect`]:
    /// never followed by our own client. Any other status is the caller's to judge.
    pub async fn send(&self, url: &reqwest::Url, req: reqwest::RequestBuilder) -> Result<reqwest::Response, SendError> {
        let r = req.timeout(self.timeout).send().await.map_err(SendError::Transport)?;
        if r.status().is_redirection() || r.url() != url {
            return Err(SendError::Redirect(r.status()));
        }
        Ok(r)
    }
}

/// Why a call got no answer to judge.
#[derive(Debug)]
pub enum SendError {
    /// Network error or timeout (`is_timeout()` tells which).
    Transport(reqwest::Error),
    /// The answer was a redirect, or came through one: refused.
    Redirect(reqwest::StatusCode),
}

/// A URL that may not be called: not a URL, not `https`, or `http` while that is not allowed.
/// `Display` names the URL and the reason; the caller prefixes what the URL was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHttps(String);

impl std::fmt::Display for NotHttps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotHttps {}

/// Refuses a URL that is not `https` (or `http` when allowed). RFC 8414 §2: the issuer is "a
/// URL that uses the "https" scheme"; RFC 6749 §3.2: "the authorization server MUST require the
/// use of TLS ... when sending requests to the token endpoint"; RFC 7662 §2: "The introspection
/// endpoint MUST be protected by a transport-layer security mechanism"; and the JWKS must come
/// over TLS or anyone on the path can hand a guard their own keys.
pub fn require_https(url: &str, allow_http: bool) -> Result<reqwest::Url, NotHttps> {
    let parsed = reqwest::Url::parse(url).map_err(|e| NotHttps(format!("{url} is not a URL ({e})")))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http => Ok(parsed),
        "http" => Err(NotHttps(format!("{url} is not https (allow_insecure_http is off)"))),
        other => Err(NotHttps(format!("{url} has scheme {other}, not https"))),
    }
}

/// `s` encoded for an `application/x-www-form-urlencoded` body (token requests,
/// introspection) and for Basic credentials.
pub fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `Authorization` value for client credentials: RFC 6749 §2.3.1 form-encodes id and
/// secret before the Basic encoding.
pub fn basic_credentials(id: &ClientId, secret: &ClientSecret) -> String {
    let pair = format!("{}:{}", form_encode(id.as_str()), form_encode(secret.expose()));
    format!("Basic {}", STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_2_the_authority_and_token_endpoint_must_be_https() {
        assert!(require_https("https://as.example/token", false).is_ok());
        assert!(require_https("http://as.example/token", false).is_err());
        assert!(require_https("http://as.example/token", true).is_ok());
        assert!(require_https("ftp://as.example/token", true).is_err());
        assert!(require_https("/token", true).is_err());
    }

    #[test]
    fn rfc8414_2_the_authority_and_its_endpoints_must_be_https() {
        assert!(require_https("https://as.example", false).is_ok());
        assert!(require_https("http://as.example", false).is_err());
        assert!(require_https("http://as.example", true).is_ok());
        assert!(require_https("ftp://as.example", true).is_err());
        assert!(require_https("not a url", true).is_err());
    }

    #[test]
    fn rfc6749_2_3_1_id_and_secret_are_form_encoded_before_basic() {
        let (id, secret) = (ClientId::new("a b").unwrap(), ClientSecret::new("p:w%").unwrap());
        assert_eq!(basic_credentials(&id, &secret), format!("Basic {}", STANDARD.encode("a+b:p%3Aw%25")));
    }
}
