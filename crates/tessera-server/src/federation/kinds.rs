//! What a trust's kind knows about its issuer's tokens (issue 15, `--kind`): the shape they
//! must have, checked before any rule is evaluated, and the shorthand claims rules may name
//! instead of a JSON Pointer (`namespace=payments` rather than
//! `/kubernetes.io/namespace=payments`).
//!
//! A shorthand is computed from the token's own claims after the shape check, so it always
//! agrees with them; it replaces a claim of the same name the token may carry, which keeps a
//! rule's meaning from depending on what else the issuer put in the token.

use serde_json::{Map, Value};

use super::trusts::TrustKind;

/// Why a token does not have its trust kind's shape (logged; the client is told only
/// `invalid_client` / `invalid_grant`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Longest SPIFFE ID (SPIFFE ID specification §2.3: 2048 bytes).
const MAX_SPIFFE_ID: usize = 2048;

/// The shorthand claims of each kind, for `trust show` and the README.
pub fn shorthands(kind: TrustKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        TrustKind::Kubernetes => &[
            ("namespace", "the namespace of system:serviceaccount:NS:SA"),
            ("service_account", "the service account of system:serviceaccount:NS:SA"),
            ("service_account_uid", "/kubernetes.io/serviceaccount/uid"),
            ("pod", "/kubernetes.io/pod/name (bound tokens)"),
            ("pod_uid", "/kubernetes.io/pod/uid (bound tokens)"),
            ("node", "/kubernetes.io/node/name (Kubernetes 1.30+)"),
        ],
        TrustKind::Spiffe => &[
            ("trust_domain", "the trust domain of the SPIFFE ID in sub"),
            ("path", "the path of the SPIFFE ID in sub, from its first /"),
        ],
        TrustKind::GithubActions => &[("repository_name", "repository without its owner: acme/app -> app")],
        TrustKind::Oidc => &[],
    }
}

/// The claims rules are evaluated over: `claims` with `kind`'s shorthands added, once the
/// token has `kind`'s shape.
pub fn rule_claims(kind: TrustKind, claims: &Value) -> Result<Value, ShapeError> {
    let Some(object) = claims.as_object() else {
        return Err(ShapeError("the token's claims are not a JSON object".into()));
    };
    let extra = match kind {
        TrustKind::Kubernetes => kubernetes(object)?,
        TrustKind::Spiffe => spiffe(object)?,
        TrustKind::GithubActions => github_actions(object)?,
        TrustKind::Oidc => return Ok(claims.clone()),
    };
    let mut out = object.clone();
    for (name, value) in extra {
        out.insert(name.to_owned(), value);
    }
    Ok(Value::Object(out))
}

fn text<'a>(claims: &'a Map<String, Value>, pointer: &str) -> Option<&'a str> {
    let mut at = claims.get(pointer.split('/').nth(1)?)?;
    for part in pointer.split('/').skip(2) {
        at = at.get(part)?;
    }
    at.as_str()
}

/// Projected service-account tokens (Kubernetes TokenRequest API, `pkg/serviceaccount/claims.go`):
/// `sub` is `system:serviceaccount:NS:SA`, and the private `kubernetes.io` claim names the same
/// namespace and service account (and, for bound tokens, the pod and node).
fn kubernetes(claims: &Map<String, Value>) -> Result<Vec<(&'static str, Value)>, ShapeError> {
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<&str> = sub.split(':').collect();
    let [system, "serviceaccount", ns, sa] = parts.as_slice() else {
        return Err(ShapeError(format!("sub {sub:?} is not system:serviceaccount:NAMESPACE:NAME")));
    };
    if *system != "system" || ns.is_empty() || sa.is_empty() {
        return Err(ShapeError(format!("sub {sub:?} is not system:serviceaccount:NAMESPACE:NAME")));
    }
    // The two must agree: a token whose `sub` and `kubernetes.io` disagree was not minted by
    // the API server, and a rule over one must not be fooled by the other.
    let named_ns = text(claims, "/kubernetes.io/namespace");
    let named_sa = text(claims, "/kubernetes.io/serviceaccount/name");
    if named_ns != Some(ns) || named_sa != Some(sa) {
        let (ns_named, sa_named) = (named_ns.unwrap_or("(none)"), named_sa.unwrap_or("(none)"));
        return Err(ShapeError(format!(
            "the kubernetes.io claim (namespace {ns_named}, service account {sa_named}) does not match sub {sub}"
        )));
    }
    let mut out = vec![("namespace", Value::from(*ns)), ("service_account", Value::from(*sa))];
    for (name, pointer) in [
        ("service_account_uid", "/kubernetes.io/serviceaccount/uid"),
        ("pod", "/kubernetes.io/pod/name"),
        ("pod_uid", "/kubernetes.io/pod/uid"),
        ("node", "/kubernetes.io/node/name"),
    ] {
        if let Some(v) = text(claims, pointer) {
            out.push((name, Value::from(v)));
        }
    }
    Ok(out)
}

/// JWT-SVIDs (SPIFFE JWT-SVID specification §3): `sub` is the workload's SPIFFE ID, which must
/// be well formed (SPIFFE ID specification §2): `spiffe://`, a trust domain of lowercase
/// letters, digits, `.`, `-` and `_`, then a path of non-empty segments of letters, digits,
/// `.`, `-` and `_`, none of them `.` or `..`, no query, fragment, port or user info. A
/// malformed ID could make a glob match what its writer never meant.
fn spiffe(claims: &Map<String, Value>) -> Result<Vec<(&'static str, Value)>, ShapeError> {
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let bad = |why: &str| ShapeError(format!("sub {sub:?} is not a SPIFFE ID: {why}"));
    if sub.len() > MAX_SPIFFE_ID {
        return Err(bad("longer than 2048 bytes"));
    }
    let rest = sub.strip_prefix("spiffe://").ok_or_else(|| bad("no spiffe:// scheme"))?;
    let (domain, path) = rest.split_once('/').map_or((rest, ""), |(d, p)| (d, p));
    if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b))
    {
        return Err(bad("the trust domain holds characters other than a-z 0-9 . - _"));
    }
    if !path.is_empty() || rest.ends_with('/') {
        for segment in path.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(bad("an empty, . or .. path segment"));
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b)) {
                return Err(bad("a path segment holds characters other than a-z A-Z 0-9 . - _"));
            }
        }
    }
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    Ok(vec![("trust_domain", Value::from(domain)), ("path", Value::from(path))])
}

/// GitHub Actions OIDC tokens (GitHub docs, "About security hardening with OpenID Connect"):
/// `repository` is `OWNER/NAME` with `OWNER` the `repository_owner` claim, and the claims rules
/// are written over (`repository_owner`, `ref`, `job_workflow_ref`) are present. `sub` is not
/// checked: organisations may customise its template.
fn github_actions(claims: &Map<String, Value>) -> Result<Vec<(&'static str, Value)>, ShapeError> {
    for required in ["repository", "repository_owner", "job_workflow_ref", "ref"] {
        if claims.get(required).and_then(Value::as_str).is_none() {
            return Err(ShapeError(format!("a GitHub Actions token carries {required}; this one does not")));
        }
    }
    let repository = text(claims, "/repository").unwrap_or_default();
    let owner = text(claims, "/repository_owner").unwrap_or_default();
    match repository.split_once('/') {
        Some((o, name)) if o == owner && !name.is_empty() && !name.contains('/') => {
            Ok(vec![("repository_name", Value::from(name))])
        }
        _ => Err(ShapeError(format!("repository {repository:?} is not {owner}/NAME"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn k8s(sub: &str, ns: &str, sa: &str) -> Value {
        json!({ "sub": sub, "kubernetes.io": { "namespace": ns, "serviceaccount": { "name": sa, "uid": "u-1" },
            "pod": { "name": "api-1", "uid": "p-1" } } })
    }

    #[test]
    fn kubernetes_tokens_gain_namespace_and_service_account_and_must_agree_with_sub() {
        let c =
            rule_claims(TrustKind::Kubernetes, &k8s("system:serviceaccount:payments:api", "payments", "api")).unwrap();
        assert_eq!((c["namespace"].as_str(), c["service_account"].as_str()), (Some("payments"), Some("api")));
        assert_eq!((c["pod"].as_str(), c["pod_uid"].as_str()), (Some("api-1"), Some("p-1")));
        assert!(c.get("node").is_none(), "absent when the token has no node");
        for (sub, ns, sa) in [
            ("system:serviceaccount:payments:api", "billing", "api"),
            ("system:serviceaccount:payments:api", "payments", "worker"),
            ("system:serviceaccount:payments", "payments", "api"),
            ("system:serviceaccount:payments:api:x", "payments", "api"),
            ("system:node:payments:api", "payments", "api"),
            ("system:serviceaccount::api", "", "api"),
        ] {
            assert!(rule_claims(TrustKind::Kubernetes, &k8s(sub, ns, sa)).is_err(), "{sub} {ns} {sa}");
        }
        // A token's own claim of a shorthand's name does not survive.
        let mut forged = k8s("system:serviceaccount:payments:api", "payments", "api");
        forged["namespace"] = "kube-system".into();
        assert_eq!(rule_claims(TrustKind::Kubernetes, &forged).unwrap()["namespace"], "payments");
    }

    #[test]
    fn spiffe_ids_are_checked_as_the_spiffe_id_specification_writes_them() {
        let c = rule_claims(TrustKind::Spiffe, &json!({ "sub": "spiffe://prod.acme/ns/billing/sa/api" })).unwrap();
        assert_eq!((c["trust_domain"].as_str(), c["path"].as_str()), (Some("prod.acme"), Some("/ns/billing/sa/api")));
        let root = rule_claims(TrustKind::Spiffe, &json!({ "sub": "spiffe://prod.acme" })).unwrap();
        assert_eq!(root["path"], "");
        for bad in [
            "spiffe://prod.acme/ns/../kube-system",
            "spiffe://prod.acme/ns//billing",
            "spiffe://prod.acme/ns/billing/",
            "spiffe://Prod.acme/ns",
            "spiffe://prod.acme:443/ns",
            "spiffe://user@prod.acme/ns",
            "spiffe://prod.acme/ns?x=1",
            "spiffe://prod.acme/ns#f",
            "spiffe:///ns",
            "https://prod.acme/ns",
        ] {
            assert!(rule_claims(TrustKind::Spiffe, &json!({ "sub": bad })).is_err(), "{bad}");
        }
        let long = format!("spiffe://prod.acme/{}", "a".repeat(2100));
        assert!(rule_claims(TrustKind::Spiffe, &json!({ "sub": long })).is_err());
    }

    #[test]
    fn github_actions_tokens_need_their_claims_and_a_repository_of_their_owner() {
        let token = json!({ "sub": "repo:acme/app:environment:prod", "repository": "acme/app",
            "repository_owner": "acme", "ref": "refs/heads/main",
            "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main" });
        assert_eq!(rule_claims(TrustKind::GithubActions, &token).unwrap()["repository_name"], "app");
        let mut other_owner = token.clone();
        other_owner["repository"] = "evil/app".into();
        assert!(rule_claims(TrustKind::GithubActions, &other_owner).is_err());
        let mut no_ref = token.clone();
        no_ref.as_object_mut().unwrap().remove("ref");
        assert!(rule_claims(TrustKind::GithubActions, &no_ref).is_err());
    }

    #[test]
    fn oidc_tokens_are_taken_as_they_are() {
        let token = json!({ "sub": "anything", "namespace": "x" });
        assert_eq!(rule_claims(TrustKind::Oidc, &token).unwrap(), token);
        assert!(rule_claims(TrustKind::Oidc, &json!("not an object")).is_err());
    }
}
