//! How the registry's records read as JSON: the admin API's answers and the CLI's `show`
//! (one rendering, so the two never drift). Public information only: no secret, no secret
//! hash, no private key; a client's secrets by id and kind.

use serde_json::{Value, json};
use tessera_store::{ClientRecord, KeyRecord, ScopeRecord, TrustRecord, TrustRuleRecord};
use tessera_types::{ClientAuthMethod, UnixTime};

use crate::secrets::SecretHashKind;

/// A scope; `built_in` for the admin API's own.
pub fn scope(s: &ScopeRecord, built_in: bool) -> Value {
    json!({
        "name": s.name,
        "display_name": s.display_name,
        "display_names": s.display_names,
        "description": s.description,
        "resources": s.resources,
        "created_at": s.created_at,
        "built_in": built_in,
    })
}

/// A client: its settings, its secrets' ids, kinds, expiry and last use, its keys' ids and
/// thumbprints; `now` tells which secrets have expired.
pub fn client(c: &ClientRecord, now: UnixTime) -> Value {
    json!({
        "client_id": c.client_id,
        "display_name": c.display_name,
        "enabled": c.enabled,
        "permissions": c.permissions,
        "access_token_lifetime": c.access_token_lifetime,
        "token_format": c.token_format,
        "signing_alg": c.signing_alg,
        "secrets": c.secrets.iter().map(|s| json!({
            "id": s.id,
            "kind": if SecretHashKind::of(&s.hash).is_some_and(SecretHashKind::is_generated) {
                "generated"
            } else {
                "imported (argon2id)"
            },
            "created_at": s.created_at,
            "expires_at": s.expires_at,
            "expired": s.expired(now),
            "last_used_at": s.last_used_at,
        })).collect::<Vec<_>>(),
        "created_at": c.created_at,
        "issuance_rate_per_second": c.limits.issuance_rate_milli.map(|m| m as f64 / 1000.0),
        "issuance_burst": c.limits.issuance_burst,
        "max_live_reference_tokens": c.limits.max_live_tokens,
        "tokens_not_before": c.tokens_not_before,
        "token_endpoint_auth_method": c.auth_method.map(ClientAuthMethod::as_str),
        "keys": c.jwks.iter().flat_map(|set| &set.keys).map(|k| json!({
            "kid": k.kid,
            "alg": k.alg,
            "kty": k.kty,
            "thumbprint": tessera_jose::thumbprint(k),
        })).collect::<Vec<_>>(),
        "jwks_uri": c.jwks_uri,
        "tls_client_certificates": c.tls.certificates.iter().map(|t| json!({ "x5t#S256": t })).collect::<Vec<_>>(),
        "tls_client_auth": c.tls.subject.as_ref().map(|s| json!({ s.metadata_name(): s.value() })),
        "require_dpop": c.require_dpop,
    })
}

/// A signing key: its public half only.
pub fn key(k: &KeyRecord) -> Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "status": k.status.as_str(),
        "created_at": k.created_at,
        "activates_at": k.activates_at,
        "retired_at": k.retired_at,
        "remove_after": k.remove_after,
        "public_jwk": serde_json::from_str::<Value>(&k.public_jwk).unwrap_or(Value::Null),
    })
}

/// A trust rule.
pub fn rule(r: &TrustRuleRecord) -> Value {
    json!({ "id": r.id, "client": r.client_id, "match": r.conditions })
}

/// A trust and its rules, in evaluation order.
pub fn trust(t: &TrustRecord, rules: &[TrustRuleRecord]) -> Value {
    json!({
        "name": t.name,
        "kind": t.kind,
        "issuer": t.issuer,
        "keys": match (&t.jwks_uri, &t.jwks) {
            (Some(uri), _) => json!({ "jwks_uri": uri }),
            (None, Some(jwks)) => json!({ "jwks": serde_json::from_str::<Value>(jwks).unwrap_or_default() }),
            (None, None) => json!("discovery"),
        },
        "tls_ca": if t.ca_pem.is_some() { "the trust's own CA" } else { "the platform's anchors and jwks_uri_ca_file" },
        "audience": t.audience,
        "max_token_age": t.max_token_age,
        "max_lifetime": t.max_lifetime,
        "max_uses": t.max_uses,
        "created_at": t.created_at,
        "rules": rules.iter().map(rule).collect::<Vec<_>>(),
    })
}
