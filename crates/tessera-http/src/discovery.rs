//! Discovery (RFC 8414 / OpenID Connect Discovery): fetching the authority's metadata and
//! checking that it names the authority it was fetched from.

use tessera_types::Issuer;
use tessera_types::rfc8414::Metadata;

use crate::{AuthorityClient, NotHttps, SendError, require_https};

/// Why discovery gave no usable metadata, in the order the checks run.
#[derive(Debug)]
pub enum DiscoveryError {
    /// The discovery URL may not be called.
    Url(NotHttps),
    /// No answer (network, timeout, redirect).
    Send(SendError),
    /// An answer other than 2xx.
    Status(reqwest::StatusCode),
    /// A body that is not discovery metadata.
    Body(reqwest::Error),
    /// Metadata for another issuer (RFC 8414 §3.3, OpenID Connect Discovery §4.3).
    Issuer(Metadata),
}

/// The metadata at `{authority}/.well-known/openid-configuration`, whose `issuer` must be
/// `authority`. The endpoints it names are not checked here: each caller uses different ones.
pub async fn discover(http: &AuthorityClient, authority: &Issuer) -> Result<Metadata, DiscoveryError> {
    let url = require_https(&authority.openid_configuration_url(), http.allow_http()).map_err(DiscoveryError::Url)?;
    let r = http.send(&url, http.get(&url)).await.map_err(DiscoveryError::Send)?;
    if !r.status().is_success() {
        return Err(DiscoveryError::Status(r.status()));
    }
    let doc: Metadata = r.json().await.map_err(DiscoveryError::Body)?;
    if !doc.is_issued_by(authority) {
        return Err(DiscoveryError::Issuer(doc));
    }
    Ok(doc)
}
