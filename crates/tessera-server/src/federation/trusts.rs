//! Registering trusts and their rules (`tessera trust ...`), and `trust test`: which rule a
//! given external token would match, and why the others do not.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tessera_jose::Jws;
use tessera_store::{Store, TrustRecord, TrustRuleRecord};
use tessera_types::rfc7517::JwkSet;
use tessera_types::{ClientId, Issuer, JwksUri, UnixTime};

use super::rules::{Condition, Explanation, Rule, RuleSet};
use crate::admin::AdminError;
use crate::client_keys::remote::TrustRoots;
use crate::client_keys::{KeyBounds, parse_jwks};

/// The claim shapes a trust expects (documented per kind in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TrustKind {
    /// Projected service-account tokens: `sub` = `system:serviceaccount:NS:SA`, the
    /// `kubernetes.io` claim (namespace, service account, pod name and uid).
    Kubernetes,
    /// JWT-SVIDs: `sub` = the SPIFFE ID (`spiffe://trust-domain/path`).
    Spiffe,
    /// GitHub Actions OIDC tokens: `repository`, `repository_owner`, `ref`, `environment`,
    /// `job_workflow_ref`.
    GithubActions,
    /// Any OIDC issuer.
    Oidc,
}

impl TrustKind {
    const ALL: [Self; 4] = [Self::Kubernetes, Self::Spiffe, Self::GithubActions, Self::Oidc];

    /// The kind stored as `text`; `None` for anything else (a trust with an unknown kind is
    /// not loaded: it fails closed).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    #[allow(missing_docs)]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Spiffe => "spiffe",
            Self::GithubActions => "github-actions",
            Self::Oidc => "oidc",
        }
    }
}

/// Longest `--max-token-age`, `--max-lifetime`: a day (workload tokens live minutes to hours).
const MAX_SECONDS: i64 = 86_400;

/// Largest `--max-uses`: beyond it, leave the bound out (reuse for the token's lifetime).
const MAX_USES: i64 = 1000;

/// Most conditions in one rule.
pub const MAX_CONDITIONS: usize = 16;

/// A trust to register: `tessera trust add`, or a `[[trusts]]` entry of the seed file (with
/// its `[[trusts.rules]]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct TrustSpec {
    /// Name of the trust (as a client id: printable ASCII).
    #[cfg_attr(feature = "clap", arg(value_parser = |s: &str| ClientId::new(s)))]
    pub name: ClientId,
    /// The external issuer (`iss` of its tokens).
    #[cfg_attr(feature = "clap", arg(long, value_parser = |s: &str| Issuer::new(s)))]
    pub issuer: Issuer,
    /// What kind of issuer: its claim shapes.
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value = "oidc"))]
    #[serde(default = "oidc")]
    pub kind: TrustKind,
    /// The issuer's JWK Set URL (https; fetched and cached as clients' `jwks_uri` are).
    /// Default: the one the issuer's discovery document names.
    #[cfg_attr(feature = "clap", arg(long, value_parser = |s: &str| JwksUri::new(s), conflicts_with = "jwks_file"))]
    pub jwks_uri: Option<JwksUri>,
    /// The issuer's public keys as a JWK Set file (air-gapped clusters, or a Kubernetes JWKS
    /// that needs authentication to fetch).
    #[cfg_attr(feature = "clap", arg(long))]
    pub jwks_file: Option<PathBuf>,
    /// PEM file of the CA that issues the issuer's TLS certificate (discovery and JWKS are
    /// then fetched trusting that CA alone). Default: the platform's anchors and
    /// `jwks_uri_ca_file`.
    #[cfg_attr(feature = "clap", arg(long = "ca", value_name = "FILE"))]
    pub ca_file: Option<PathBuf>,
    /// The audience external tokens must carry (default: Tessera's issuer identifier).
    #[cfg_attr(feature = "clap", arg(long))]
    pub audience: Option<String>,
    /// Refuse tokens issued longer ago than this, whatever their `exp` (seconds, ≤ 86400).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_token_age: Option<i64>,
    /// Refuse tokens whose lifetime (`exp` − `iat`) is longer (seconds, ≤ 86400).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_lifetime: Option<i64>,
    /// How many times one external token is accepted, 1 to 1000 (default: as often as it
    /// lives, since Kubernetes reuses projected tokens for an hour).
    #[cfg_attr(feature = "clap", arg(long))]
    pub max_uses: Option<i64>,
    /// The CA as PEM text (seed and registry files; `tessera export` writes it so).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The JWK Set inline (seed file only).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Rules, in order (seed file only; on the command line: `trust rule add`).
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// A rule of a seeded trust: `client = "payments"`, `match = ["sub=system:serviceaccount:payments:*"]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[allow(missing_docs)]
    pub client: ClientId,
    /// `CLAIM=PATTERN` conditions, all of which must hold.
    #[serde(rename = "match")]
    pub matches: Vec<String>,
}

impl TrustSpec {
    /// A trust of `kind` for `issuer`, keys by discovery, every bound at its default.
    pub fn new(name: ClientId, issuer: Issuer, kind: TrustKind) -> Self {
        Self {
            name,
            issuer,
            kind,
            jwks_uri: None,
            jwks_file: None,
            ca_file: None,
            ca_pem: None,
            audience: None,
            max_token_age: None,
            max_lifetime: None,
            max_uses: None,
            jwks: None,
            rules: Vec::new(),
        }
    }
}

fn oidc() -> TrustKind {
    TrustKind::Oidc
}

/// Registers the seed file's trusts that do not exist yet, each with its rules (a trust that
/// exists keeps the rules it has: seeding never duplicates or reorders them).
pub async fn seed(store: &Store, trusts: &[TrustSpec], bounds: &KeyBounds, now: UnixTime) -> Result<(), AdminError> {
    for t in trusts {
        match add_trust(store, t.clone(), bounds, now).await {
            Ok(record) => {
                for rule in &t.rules {
                    add_rule(store, &record.name, &rule.client, &rule.matches, now).await?;
                }
                tracing::info!(trust = %record.name, rules = t.rules.len(), "seeded trust");
            }
            Err(AdminError::Store(tessera_store::StoreError::Conflict(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Registers a trust: keys read and checked now (a file must hold public signature keys
/// within `bounds`), bounds within range, the name free.
pub async fn add_trust(
    store: &Store,
    spec: TrustSpec,
    bounds: &KeyBounds,
    now: UnixTime,
) -> Result<TrustRecord, AdminError> {
    let record = trust_record(spec, bounds, now)?;
    store.add_trust(&record).await?;
    Ok(record)
}

/// The record `spec` registers, without the store: what `add_trust` stores and `apply`
/// compares.
pub fn trust_record(spec: TrustSpec, bounds: &KeyBounds, now: UnixTime) -> Result<TrustRecord, AdminError> {
    let refused = |why: String| AdminError::Refused(format!("trust {}: {why}", spec.name));
    for (what, v) in [("--max-token-age", spec.max_token_age), ("--max-lifetime", spec.max_lifetime)] {
        if v.is_some_and(|s| !(1..=MAX_SECONDS).contains(&s)) {
            return Err(refused(format!("{what} is 1 to {MAX_SECONDS} seconds")));
        }
    }
    if spec.max_uses.is_some_and(|n| !(1..=MAX_USES).contains(&n)) {
        return Err(refused(format!(
            "--max-uses is 1 to {MAX_USES}; leave it out to allow reuse for the token's life"
        )));
    }
    if spec.audience.as_deref().is_some_and(|a| a.is_empty() || a.len() > 1024) {
        return Err(refused("--audience is 1 to 1024 characters".into()));
    }
    let sources = [spec.jwks_uri.is_some(), spec.jwks_file.is_some(), spec.jwks.is_some()];
    match sources.iter().filter(|s| **s).count() {
        // Keys by the issuer's discovery document, which only an https issuer can serve.
        0 if !spec.issuer.as_str().starts_with("https://") => {
            return Err(refused("keys by discovery need an https issuer; or give --jwks-uri or --jwks-file".into()));
        }
        0 | 1 => {}
        _ => return Err(refused("--jwks-uri, --jwks-file and an inline jwks exclude each other".into())),
    }
    let ca_pem = match (&spec.ca_file, &spec.ca_pem) {
        (Some(_), Some(_)) => return Err(refused("ca_file and ca_pem exclude each other".into())),
        (Some(_), _) | (_, Some(_)) if spec.jwks_file.is_some() || spec.jwks.is_some() => {
            return Err(refused("--ca is for keys fetched over TLS; the keys here are given inline".into()));
        }
        (Some(path), None) => {
            let pem = std::fs::read_to_string(path).map_err(|e| refused(format!("{}: {e}", path.display())))?;
            TrustRoots::from_pem(path.display().to_string(), pem.as_bytes()).map_err(refused)?;
            Some(pem)
        }
        (None, Some(pem)) => {
            TrustRoots::from_pem(format!("trust {}", spec.name), pem.as_bytes()).map_err(refused)?;
            Some(pem.clone())
        }
        (None, None) => None,
    };
    let jwks = match (&spec.jwks_file, &spec.jwks) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| refused(format!("{}: {e}", path.display())))?;
            let set = parse_jwks(&spec.name, &text, bounds)?;
            Some(serde_json::to_string(&set).expect("a JWK Set serialises"))
        }
        (None, Some(inline)) => {
            let set = crate::client_keys::from_value(&spec.name, inline.clone(), bounds)?;
            Some(serde_json::to_string(&set).expect("a JWK Set serialises"))
        }
        (None, None) => None,
    };
    let record = TrustRecord {
        name: spec.name.as_str().to_owned(),
        kind: spec.kind.as_str().to_owned(),
        issuer: spec.issuer.as_str().to_owned(),
        jwks_uri: spec.jwks_uri.map(|u| u.as_str().to_owned()),
        jwks,
        ca_pem,
        audience: spec.audience,
        max_token_age: spec.max_token_age,
        max_lifetime: spec.max_lifetime,
        max_uses: spec.max_uses,
        created_at: now,
    };
    Ok(record)
}

/// Appends a rule to `trust`: `client` must exist, each condition parse (`CLAIM=PATTERN`).
pub async fn add_rule(
    store: &Store,
    trust: &str,
    client: &ClientId,
    conditions: &[String],
    now: UnixTime,
) -> Result<i64, AdminError> {
    if conditions.is_empty() || conditions.len() > MAX_CONDITIONS {
        return Err(AdminError::Refused(format!("a rule has 1 to {MAX_CONDITIONS} --match conditions")));
    }
    for c in conditions {
        Condition::parse(c).map_err(|e| AdminError::Refused(format!("--match {c}: {e}")))?;
    }
    if store.get_client(client).await?.is_none() {
        return Err(AdminError::Refused(format!("no client {client}: a rule names an existing client")));
    }
    Ok(store.add_trust_rule(trust, client, conditions, now).await?)
}

/// The rules of a trust as evaluated. Stored conditions were checked when added; one that no
/// longer parses (edited by hand) fails closed: its rule never matches.
pub fn rule_set(records: &[TrustRuleRecord]) -> RuleSet {
    let rules = records
        .iter()
        .filter_map(|r| {
            let conditions: Result<Vec<_>, _> = r.conditions.iter().map(|c| Condition::parse(c)).collect();
            match conditions {
                Ok(conditions) if !conditions.is_empty() => {
                    Some(Rule { id: r.id, client: r.client_id.as_str().to_owned(), conditions })
                }
                _ => {
                    tracing::error!(trust = %r.trust, rule = r.id, "stored rule does not parse: ignored");
                    None
                }
            }
        })
        .collect();
    RuleSet::new(rules)
}

/// What `trust test` found about one token.
#[derive(Debug)]
pub struct TokenReport {
    /// Checks of the token itself, each `(what, Ok(detail) | Err(why))`.
    pub checks: Vec<(&'static str, Result<String, String>)>,
    /// The rules' verdict.
    pub rules: Explanation,
}

/// Explains what `trust` makes of `token` (a compact JWT): its issuer and audience, its
/// signature when the trust holds its keys (keys fetched from the issuer are the server's to
/// fetch), and which rule matches. `tessera_issuer` is the audience expected by default.
pub fn explain(trust: &TrustRecord, rules: &RuleSet, token: &str, tessera_issuer: Option<&str>) -> TokenReport {
    let mut checks = Vec::new();
    let claims: Value = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    if !claims.is_object() {
        checks.push(("token", Err("not a JWT with a JSON payload".into())));
        return TokenReport { checks, rules: Explanation { matched: None, misses: Vec::new() } };
    }
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let kind = TrustKind::parse(&trust.kind).unwrap_or(TrustKind::Oidc);
    checks.push((
        "issuer",
        if iss.trim_end_matches('/') == trust.issuer.trim_end_matches('/') {
            Ok(iss.to_owned())
        } else {
            Err(format!("iss {iss:?} is not {}", trust.issuer))
        },
    ));
    let expected = trust.audience.as_deref().or(tessera_issuer);
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    checks.push((
        "audience",
        match expected {
            Some(want) if audiences.contains(&want) => Ok(want.to_owned()),
            Some(want) => Err(format!("aud {audiences:?} does not name {want}")),
            None => Err("no audience to compare with (pass --audience to the trust)".into()),
        },
    ));
    checks.push(("signature", signature(trust, token)));
    let claims = match super::kinds::rule_claims(kind, &claims) {
        Ok(with_shorthands) => {
            let added: Vec<&str> = super::kinds::shorthands(kind)
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| with_shorthands.get(n).is_some())
                .collect();
            checks.push(("shape", Ok(format!("a {} token{}", kind.as_str(), shorthand_list(&added)))));
            with_shorthands
        }
        Err(e) => {
            checks.push(("shape", Err(format!("not a {} token: {e}", kind.as_str()))));
            claims
        }
    };
    TokenReport { checks, rules: rules.explain(&claims) }
}

fn shorthand_list(names: &[&str]) -> String {
    if names.is_empty() { String::new() } else { format!("; rules may also name {}", names.join(", ")) }
}

fn signature(trust: &TrustRecord, token: &str) -> Result<String, String> {
    let Some(jwks) = &trust.jwks else {
        return Ok("not checked here: the server fetches this issuer's keys".into());
    };
    let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("stored keys do not parse: {e}"))?;
    let jws = Jws::parse(token).map_err(|e| e.to_string())?;
    let id = ClientId::new(format!("trust:{}", trust.name)).map_err(|e| e.to_string())?;
    match jws.verify_with_any(&crate::client_keys::verifying_keys(&id, &set)) {
        Ok(()) => Ok(format!("verified, key {}", jws.kid.as_ref().map_or("(no kid)", |k| k.as_str()))),
        Err(_) => Err("no key of the trust verifies it".into()),
    }
}
