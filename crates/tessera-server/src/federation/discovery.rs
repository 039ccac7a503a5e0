//! Keys by discovery, a trust's default (issue 15): the issuer's OpenID Connect discovery
//! document (`{issuer}/.well-known/openid-configuration`, as Kubernetes' API server, GitHub
//! Actions and SPIRE's OIDC discovery provider serve it) names its `jwks_uri`; the keys there
//! are then fetched and cached as clients' are. The document is fetched with the same bounds
//! (https, no redirects, size, time), its answer kept for `jwks_uri_cache_ttl_s`, a failure
//! for `jwks_uri_min_refetch_interval_s`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use tessera_types::JwksUri;

use crate::client_keys::remote::{RemoteKeys, TrustRoots};

#[derive(Clone)]
enum Entry {
    Found(JwksUri, i64),
    Failed(i64),
}

/// What each trusted issuer's discovery document said, by issuer.
#[derive(Default)]
pub struct Discovered {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Discovered {
    /// The `jwks_uri` `issuer` announces, at `now` (seconds).
    pub async fn jwks_uri(
        &self,
        remote: &RemoteKeys,
        issuer: &str,
        roots: Option<&TrustRoots>,
        now: i64,
    ) -> Result<JwksUri, String> {
        let limits = remote.limits();
        let cached = self.entries.lock().expect("discovery lock").get(issuer).cloned();
        match cached {
            Some(Entry::Found(uri, at)) if now.saturating_sub(at) < limits.cache_ttl => return Ok(uri),
            Some(Entry::Failed(at)) if now.saturating_sub(at) < limits.min_refetch_interval => {
                return Err("discovery failed less than jwks_uri_min_refetch_interval_s ago".into());
            }
            _ => {}
        }
        let outcome = discover(remote, issuer, roots).await;
        let entry = match &outcome {
            Ok(uri) => Entry::Found(uri.clone(), now),
            Err(why) => {
                tracing::warn!(issuer, %why, "discovery of a trusted issuer failed");
                Entry::Failed(now)
            }
        };
        self.entries.lock().expect("discovery lock").insert(issuer.to_owned(), entry);
        outcome
    }
}

async fn discover(remote: &RemoteKeys, issuer: &str, roots: Option<&TrustRoots>) -> Result<JwksUri, String> {
    let url = JwksUri::new(format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
        .map_err(|e| format!("discovery URL: {e}"))?;
    let body = remote.fetch_document(&url, roots).await.map_err(|e| e.to_string())?;
    let doc: Value = serde_json::from_str(&body).map_err(|e| format!("discovery document: {e}"))?;
    // OpenID Connect Discovery §4.3: the document's issuer must be the one asked about, or
    // keys of another issuer would verify this one's tokens.
    let named = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(format!("the discovery document names issuer {named:?}"));
    }
    let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("the discovery document has no jwks_uri")?;
    JwksUri::new(jwks_uri).map_err(|e| e.to_string())
}
