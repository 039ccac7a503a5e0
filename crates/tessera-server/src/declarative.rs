//! The registry kept in a file (issue 16): `tessera apply -f registry.toml` reconciles the
//! store with it — scopes, clients and trusts created, updated and (with `--prune`) removed,
//! after a plan is shown — and `tessera export` writes the store in the same format, so the
//! registry can live in git. Seeding at `serve` keeps its create-if-absent meaning.
//!
//! The format is the seed file's (`[[scopes]]`, `[[clients]]`, `[[trusts]]` with
//! `[[trusts.rules]]`), with one difference: a secret is never written in the file, only a
//! reference to where it is (`secret_file`, relative to the file, or `secret_env`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use tessera_store::{ClientRecord, ClientUpdate, ScopeRecord, Store, TrustRecord};
use tessera_types::{ClientId, ClientSecret, Permission, ScopeName, UnixTime};

use crate::admin::{self, AdminError, ClientSpec, ScopeSpec};
use crate::client_keys::KeyBounds;
use crate::clock::Random;
use crate::federation::trusts::{self, RuleSpec, TrustSpec};
use crate::secrets::{SecretVerifier, Verdict};

/// Where a client's secret is, in a registry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A file of one line (relative paths: to the registry file).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// A client of a registry file: its registration and where its secret is.
#[derive(Debug, Clone)]
pub struct ClientEntry {
    #[allow(missing_docs)]
    pub spec: ClientSpec,
    #[allow(missing_docs)]
    pub secret: Option<SecretRef>,
}

/// A registry file, parsed.
#[derive(Debug, Clone, Default)]
pub struct RegistryFile {
    #[allow(missing_docs)]
    pub scopes: Vec<ScopeSpec>,
    #[allow(missing_docs)]
    pub clients: Vec<ClientEntry>,
    #[allow(missing_docs)]
    pub trusts: Vec<TrustSpec>,
}

fn refused(why: impl Into<String>) -> AdminError {
    AdminError::Refused(why.into())
}

impl RegistryFile {
    /// Parses `text`, the file at `path` (relative paths inside it are taken from its
    /// directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, AdminError> {
        let at = |e: &dyn fmt::Display| refused(format!("{}: {e}", path.display()));
        let base = path.parent().unwrap_or(Path::new("."));
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| at(&e))?;
        if let Some(other) = doc.keys().find(|k| !["scopes", "clients", "trusts"].contains(&k.as_str())) {
            return Err(at(&format!("unknown table {other:?}: a registry file holds scopes, clients and trusts")));
        }
        let list = |doc: &mut toml::Table, key: &str| match doc.remove(key) {
            None => Ok(Vec::new()),
            Some(toml::Value::Array(items)) => Ok(items),
            Some(_) => Err(at(&format!("{key} must be an array of tables ([[{key}]])"))),
        };
        let mut file = Self::default();
        for item in list(&mut doc, "scopes")? {
            file.scopes.push(ScopeSpec::deserialize(item).map_err(|e| at(&e))?);
        }
        for item in list(&mut doc, "clients")? {
            let toml::Value::Table(mut table) = item else { return Err(at(&"a client is a table")) };
            if table.contains_key("secret") {
                return Err(at(&"a secret is never written in a registry file: give secret_file or secret_env"));
            }
            let text = |v: toml::Value, what: &str| match v {
                toml::Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(at(&format!("{what} is a non-empty string"))),
            };
            let secret = match (table.remove("secret_file"), table.remove("secret_env")) {
                (Some(_), Some(_)) => return Err(at(&"secret_file and secret_env exclude each other")),
                (Some(f), None) => Some(SecretRef::File(base.join(text(f, "secret_file")?))),
                (None, Some(e)) => Some(SecretRef::Env(text(e, "secret_env")?)),
                (None, None) => None,
            };
            let mut spec = ClientSpec::deserialize(toml::Value::Table(table)).map_err(|e| at(&e))?;
            spec.jwks_file = spec.jwks_file.map(|p| base.join(p));
            spec.tls_client_cert_files = spec.tls_client_cert_files.iter().map(|p| base.join(p)).collect();
            file.clients.push(ClientEntry { spec, secret });
        }
        for item in list(&mut doc, "trusts")? {
            let mut spec = TrustSpec::deserialize(item).map_err(|e| at(&e))?;
            spec.jwks_file = spec.jwks_file.map(|p| base.join(p));
            spec.ca_file = spec.ca_file.map(|p| base.join(p));
            file.trusts.push(spec);
        }
        Ok(file)
    }
}

/// Reads a referenced secret: one line (a trailing newline stripped), as `--secret-file`.
fn read_secret(client_id: &ClientId, r: &SecretRef) -> Result<ClientSecret, AdminError> {
    let value = match r {
        SecretRef::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| refused(format!("client {client_id}: secret_file {}: {e}", path.display())))?;
            text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_owned()
        }
        SecretRef::Env(name) => {
            std::env::var(name).map_err(|_| refused(format!("client {client_id}: secret_env {name} is not set")))?
        }
    };
    ClientSecret::new(value).map_err(|e| refused(format!("client {client_id}: its secret: {e}")))
}

/// One change `apply` makes.
#[derive(Debug)]
pub enum Step {
    #[allow(missing_docs)]
    AddScope(ScopeSpec),
    /// The desired record, and what differs.
    UpdateScope(ScopeRecord, Vec<&'static str>),
    #[allow(missing_docs)]
    RemoveScope(ScopeName),
    /// Its secret, if the file references one, is in the spec.
    AddClient(Box<ClientSpec>),
    /// Every setting as the file has it, and the names of those that differ.
    UpdateClient(ClientId, Box<ClientUpdate>, Vec<&'static str>),
    /// The file references a secret the client does not hold: added beside its others.
    AddSecret(ClientId, ClientSecret),
    #[allow(missing_docs)]
    RemoveClient(ClientId),
    #[allow(missing_docs)]
    AddTrust(Box<TrustSpec>),
    /// Settings differ: removed and added again, with its rules.
    ReplaceTrust(Box<TrustSpec>, Vec<&'static str>),
    /// Only its rules differ: replaced, in the file's order (they get new ids).
    ReplaceRules(String, Vec<RuleSpec>),
    #[allow(missing_docs)]
    RemoveTrust(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[&str]| v.join(", ");
        match self {
            Self::AddScope(s) => write!(f, "+ scope {}", s.name),
            Self::UpdateScope(s, what) => write!(f, "~ scope {} ({})", s.name, list(what)),
            Self::RemoveScope(name) => write!(f, "- scope {name}"),
            Self::AddClient(c) => write!(f, "+ client {}", c.client_id),
            Self::UpdateClient(id, _, what) => write!(f, "~ client {id} ({})", list(what)),
            Self::AddSecret(id, _) => write!(f, "+ secret of client {id} (the one its entry references)"),
            Self::RemoveClient(id) => write!(f, "- client {id} (and its secrets and reference tokens)"),
            Self::AddTrust(t) => write!(f, "+ trust {} ({} rules)", t.name, t.rules.len()),
            Self::ReplaceTrust(t, what) => {
                write!(f, "~ trust {} ({}): replaced, with its {} rules", t.name, list(what), t.rules.len())
            }
            Self::ReplaceRules(name, rules) => write!(f, "~ rules of trust {name}: replaced by {}", rules.len()),
            Self::RemoveTrust(name) => write!(f, "- trust {name} (and its rules)"),
        }
    }
}

/// What `apply` needs beyond the store.
pub struct Context<'a> {
    /// Lifetime of clients that name none.
    pub default_lifetime: i64,
    #[allow(missing_docs)]
    pub bounds: &'a KeyBounds,
    #[allow(missing_docs)]
    pub rng: &'a dyn Random,
    #[allow(missing_docs)]
    pub now: UnixTime,
}

fn sorted(mut p: Vec<Permission>) -> Vec<Permission> {
    p.sort();
    p.dedup();
    p
}

/// What differs between a client as stored and as the file has it (secrets, `enabled` and
/// the tokens' not-before are the store's own).
fn client_differences(current: &ClientRecord, desired: &ClientRecord) -> Vec<&'static str> {
    let mut what = Vec::new();
    let mut differs = |name, yes: bool| {
        if yes {
            what.push(name);
        }
    };
    differs("display_name", current.display_name != desired.display_name);
    differs("permissions", sorted(current.permissions.clone()) != sorted(desired.permissions.clone()));
    differs("access_token_lifetime", current.access_token_lifetime != desired.access_token_lifetime);
    differs("token_format", current.token_format != desired.token_format);
    differs("signing_alg", current.signing_alg != desired.signing_alg);
    differs("limits", current.limits != desired.limits);
    differs("jwks", current.jwks != desired.jwks);
    differs("jwks_uri", current.jwks_uri != desired.jwks_uri);
    differs("token_endpoint_auth_method", current.auth_method != desired.auth_method);
    differs("tls_client", current.tls != desired.tls);
    differs("require_dpop", current.require_dpop != desired.require_dpop);
    what
}

fn trust_differences(current: &TrustRecord, desired: &TrustRecord) -> Vec<&'static str> {
    let pairs: [(&'static str, bool); 9] = [
        ("kind", current.kind != desired.kind),
        ("issuer", current.issuer != desired.issuer),
        ("jwks_uri", current.jwks_uri != desired.jwks_uri),
        ("jwks", current.jwks != desired.jwks),
        ("ca", current.ca_pem != desired.ca_pem),
        ("audience", current.audience != desired.audience),
        ("max_token_age", current.max_token_age != desired.max_token_age),
        ("max_lifetime", current.max_lifetime != desired.max_lifetime),
        ("max_uses", current.max_uses != desired.max_uses),
    ];
    pairs.into_iter().filter(|(_, d)| *d).map(|(n, _)| n).collect()
}

/// The steps that make the store what `file` says; removals only with `prune`. Reads the
/// store, checks every entry as `add` would, changes nothing.
pub async fn plan(store: &Store, file: RegistryFile, cx: &Context<'_>, prune: bool) -> Result<Vec<Step>, AdminError> {
    let mut steps = Vec::new();
    // Scopes first: clients name them.
    let current_scopes = store.list_scopes().await?;
    for s in &file.scopes {
        s.validate()?;
        match current_scopes.iter().find(|c| c.name == s.name) {
            None => steps.push(Step::AddScope(s.clone())),
            Some(c) => {
                let mut resources = Vec::new();
                for r in &s.resources {
                    if !resources.contains(r) {
                        resources.push(r.clone());
                    }
                }
                let desired = ScopeRecord {
                    name: s.name.clone(),
                    display_name: s.display_name.clone(),
                    display_names: s.display_names.clone(),
                    description: s.description.clone(),
                    resources,
                    created_at: c.created_at,
                };
                let what: Vec<&'static str> = [
                    ("display_name", c.display_name != desired.display_name),
                    ("display_names", c.display_names != desired.display_names),
                    ("description", c.description != desired.description),
                    ("resources", c.resources != desired.resources),
                ]
                .into_iter()
                .filter(|(_, d)| *d)
                .map(|(n, _)| n)
                .collect();
                if !what.is_empty() {
                    steps.push(Step::UpdateScope(desired, what));
                }
            }
        }
    }
    let scope_known = |name: &ScopeName| {
        file.scopes.iter().any(|s| s.name == *name) || current_scopes.iter().any(|s| s.name == *name)
    };
    let current_clients = store.list_clients().await?;
    let verifier = SecretVerifier::default();
    for entry in &file.clients {
        let mut spec = entry.spec.clone();
        if let Some(missing) = spec.scopes.iter().find(|s| !scope_known(s)) {
            return Err(refused(format!(
                "client {}: scope {missing} is neither registered nor in the file",
                spec.client_id
            )));
        }
        let secret = entry.secret.as_ref().map(|r| read_secret(&spec.client_id, r)).transpose()?;
        match current_clients.iter().find(|c| c.client_id == spec.client_id) {
            None => {
                spec.secret = secret;
                spec.validate(cx.bounds)?;
                steps.push(Step::AddClient(Box::new(spec)));
            }
            Some(current) => {
                spec.secret = None;
                spec.validate(cx.bounds)?;
                let (desired, _) = admin::client_record(spec, cx.default_lifetime, cx.bounds, cx.rng, cx.now)?;
                let what = client_differences(current, &desired);
                if !what.is_empty() {
                    let update = ClientUpdate {
                        display_name: desired.display_name.clone(),
                        access_token_lifetime: Some(desired.access_token_lifetime),
                        token_format: Some(desired.token_format),
                        signing_alg: desired.signing_alg,
                        permissions: Some(desired.permissions.clone()),
                        issuance_rate_milli: Some(desired.limits.issuance_rate_milli),
                        issuance_burst: Some(desired.limits.issuance_burst),
                        max_live_tokens: Some(desired.limits.max_live_tokens),
                        jwks: Some(desired.jwks.clone()),
                        jwks_uri: Some(desired.jwks_uri.clone()),
                        auth_method: Some(desired.auth_method),
                        tls: Some(desired.tls.clone()),
                        require_dpop: Some(desired.require_dpop),
                    };
                    steps.push(Step::UpdateClient(current.client_id.clone(), Box::new(update), what));
                }
                if let Some(secret) = secret {
                    let held = verifier.verify(&current.client_id, Some(&current.secrets), &secret).await;
                    if held != Verdict::Valid {
                        steps.push(Step::AddSecret(current.client_id.clone(), secret));
                    }
                }
            }
        }
    }
    let current_trusts = store.list_trusts().await?;
    for t in &file.trusts {
        let desired = trusts::trust_record(TrustSpec { rules: Vec::new(), ..t.clone() }, cx.bounds, cx.now)?;
        for rule in &t.rules {
            for c in &rule.matches {
                crate::federation::rules::Condition::parse(c)
                    .map_err(|e| refused(format!("trust {}: match {c}: {e}", t.name)))?;
            }
        }
        match current_trusts.iter().find(|c| c.name == t.name.as_str()) {
            None => steps.push(Step::AddTrust(Box::new(t.clone()))),
            Some(current) => {
                let what = trust_differences(current, &desired);
                if !what.is_empty() {
                    steps.push(Step::ReplaceTrust(Box::new(t.clone()), what));
                    continue;
                }
                let rules: Vec<RuleSpec> = store
                    .list_trust_rules(&current.name)
                    .await?
                    .into_iter()
                    .map(|r| RuleSpec { client: r.client_id, matches: r.conditions })
                    .collect();
                if rules != t.rules {
                    steps.push(Step::ReplaceRules(current.name.clone(), t.rules.clone()));
                }
            }
        }
    }
    if prune {
        // In reverse dependency order: rules name clients, clients name scopes.
        for c in &current_trusts {
            if !file.trusts.iter().any(|t| t.name.as_str() == c.name) {
                steps.push(Step::RemoveTrust(c.name.clone()));
            }
        }
        for c in &current_clients {
            if !file.clients.iter().any(|e| e.spec.client_id == c.client_id) {
                steps.push(Step::RemoveClient(c.client_id.clone()));
            }
        }
        for s in &current_scopes {
            if !file.scopes.iter().any(|f| f.name == s.name) {
                steps.push(Step::RemoveScope(s.name.clone()));
            }
        }
    }
    Ok(steps)
}

/// Carries out `steps` in order, each its own transaction (and audit entry); stops at the
/// first failure, naming it. Returns the secrets generated for new clients that reference
/// none, to be shown once.
pub async fn apply(
    store: &Store,
    steps: Vec<Step>,
    cx: &Context<'_>,
) -> Result<Vec<(ClientId, ClientSecret)>, AdminError> {
    let mut generated = Vec::new();
    for step in steps {
        let shown = step.to_string();
        let failed = |e: AdminError| refused(format!("{shown}: {e}"));
        match step {
            Step::AddScope(s) => {
                admin::add_scope(store, s, cx.now).await.map_err(failed)?;
            }
            Step::UpdateScope(s, _) => {
                store.update_scope(&s).await.map_err(|e| failed(e.into()))?;
            }
            Step::RemoveScope(name) => {
                store.remove_scope(&name).await.map_err(|e| failed(e.into()))?;
            }
            Step::AddClient(spec) => {
                let (record, secret) = admin::add_client(store, *spec, cx.default_lifetime, cx.bounds, cx.rng, cx.now)
                    .await
                    .map_err(failed)?;
                if let Some(secret) = secret {
                    generated.push((record.client_id, secret));
                }
            }
            Step::UpdateClient(id, update, _) => {
                store.update_client(&id, &update).await.map_err(|e| failed(e.into()))?;
            }
            Step::AddSecret(id, secret) => {
                // Imported as `client secret add` imports one: below the strength floor, refused.
                admin::add_secret(store, &id, Some(secret), false, None, cx.rng, cx.now).await.map_err(failed)?;
            }
            Step::RemoveClient(id) => {
                store.remove_client(&id, cx.now).await.map_err(|e| failed(e.into()))?;
            }
            Step::AddTrust(t) => add_trust_with_rules(store, *t, cx).await.map_err(failed)?,
            Step::ReplaceTrust(t, _) => {
                store.remove_trust(t.name.as_str()).await.map_err(|e| failed(e.into()))?;
                add_trust_with_rules(store, *t, cx).await.map_err(failed)?;
            }
            Step::ReplaceRules(name, rules) => {
                for r in store.list_trust_rules(&name).await.map_err(|e| failed(e.into()))? {
                    store.remove_trust_rule(&name, r.id).await.map_err(|e| failed(e.into()))?;
                }
                for r in &rules {
                    trusts::add_rule(store, &name, &r.client, &r.matches, cx.now).await.map_err(failed)?;
                }
            }
            Step::RemoveTrust(name) => {
                store.remove_trust(&name).await.map_err(|e| failed(e.into()))?;
            }
        }
    }
    Ok(generated)
}

async fn add_trust_with_rules(store: &Store, t: TrustSpec, cx: &Context<'_>) -> Result<(), AdminError> {
    let rules = t.rules.clone();
    let record = trusts::add_trust(store, t, cx.bounds, cx.now).await?;
    for r in &rules {
        trusts::add_rule(store, &record.name, &r.client, &r.matches, cx.now).await?;
    }
    Ok(())
}

/// The store as a registry file: everything but secret values (a client's secrets are
/// listed by id in a comment; give `secret_file` or `secret_env` to have `apply` import one).
pub async fn export(store: &Store) -> Result<String, AdminError> {
    use toml::Value as V;
    let mut out = String::from(
        "# Tessera registry (tessera export). Apply with: tessera apply -f FILE [--dry-run] [--prune]\n\
         # Secrets are never exported: give a client secret_file = \"PATH\" or secret_env = \"VAR\".\n\n",
    );
    let opt = |t: &mut toml::Table, k: &str, v: Option<V>| {
        if let Some(v) = v {
            t.insert(k.into(), v);
        }
    };
    let strings = |v: Vec<String>| V::Array(v.into_iter().map(V::String).collect());
    let json = |v: serde_json::Value| V::try_from(v).map_err(|e| refused(format!("export: {e}")));
    for s in store.list_scopes().await? {
        let mut t = toml::Table::new();
        t.insert("name".into(), V::String(s.name.to_string()));
        t.insert("resources".into(), strings(s.resources.iter().map(|r| r.as_str().to_owned()).collect()));
        opt(&mut t, "display_name", s.display_name.map(V::String));
        if !s.display_names.is_empty() {
            opt(
                &mut t,
                "display_names",
                Some(V::Table(s.display_names.into_iter().map(|(k, v)| (k, V::String(v))).collect())),
            );
        }
        opt(&mut t, "description", s.description.map(V::String));
        out.push_str(&table("scopes", t));
    }
    for c in store.list_clients().await? {
        let mut t = toml::Table::new();
        t.insert("client_id".into(), V::String(c.client_id.to_string()));
        opt(&mut t, "display_name", c.display_name.clone().map(V::String));
        let (scopes, others): (Vec<_>, Vec<_>) = c.permissions.iter().partition(|p| matches!(p, Permission::Scope(_)));
        let scope_names = scopes.iter().filter_map(|p| match p {
            Permission::Scope(s) => Some(s.to_string()),
            _ => None,
        });
        t.insert("scopes".into(), strings(scope_names.collect()));
        t.insert("permissions".into(), strings(others.iter().map(|p| p.to_string()).collect()));
        t.insert("access_token_lifetime".into(), V::Integer(c.access_token_lifetime));
        t.insert("token_format".into(), V::String(c.token_format.as_str().to_owned()));
        opt(&mut t, "signing_alg", c.signing_alg.map(|a| V::String(a.to_string())));
        opt(&mut t, "issuance_rate_per_second", c.limits.issuance_rate_milli.map(|m| V::Float(m as f64 / 1000.0)));
        opt(&mut t, "issuance_burst", c.limits.issuance_burst.map(V::Integer));
        opt(&mut t, "max_live_reference_tokens", c.limits.max_live_tokens.map(V::Integer));
        if let Some(jwks) = &c.jwks {
            t.insert("jwks".into(), json(serde_json::to_value(jwks).expect("a JWK Set serialises"))?);
        }
        opt(&mut t, "jwks_uri", c.jwks_uri.as_ref().map(|u| V::String(u.as_str().to_owned())));
        opt(&mut t, "token_endpoint_auth_method", c.auth_method.map(|m| V::String(m.as_str().to_owned())));
        if !c.tls.certificates.is_empty() {
            let prints = c.tls.certificates.iter().map(|p| p.as_str().to_owned()).collect();
            t.insert("tls_client_cert_thumbprints".into(), strings(prints));
        }
        if let Some(subject) = &c.tls.subject {
            t.insert(subject.metadata_name().into(), V::String(subject.value().to_owned()));
        }
        if c.require_dpop {
            t.insert("require_dpop".into(), V::Boolean(true));
        }
        if !c.secrets.is_empty() {
            let ids: Vec<&str> = c.secrets.iter().map(|s| s.id.as_str()).collect();
            out.push_str(&format!("# client {} holds secrets {} (not exported)\n", c.client_id, ids.join(", ")));
        }
        out.push_str(&table("clients", t));
    }
    for tr in store.list_trusts().await? {
        let mut t = toml::Table::new();
        t.insert("name".into(), V::String(tr.name.clone()));
        t.insert("issuer".into(), V::String(tr.issuer.clone()));
        t.insert("kind".into(), V::String(tr.kind.clone()));
        opt(&mut t, "jwks_uri", tr.jwks_uri.clone().map(V::String));
        if let Some(jwks) = &tr.jwks {
            let value: serde_json::Value = serde_json::from_str(jwks).map_err(|e| refused(format!("export: {e}")))?;
            t.insert("jwks".into(), json(value)?);
        }
        opt(&mut t, "ca_pem", tr.ca_pem.clone().map(V::String));
        opt(&mut t, "audience", tr.audience.clone().map(V::String));
        opt(&mut t, "max_token_age", tr.max_token_age.map(V::Integer));
        opt(&mut t, "max_lifetime", tr.max_lifetime.map(V::Integer));
        opt(&mut t, "max_uses", tr.max_uses.map(V::Integer));
        let rules: Vec<V> = store
            .list_trust_rules(&tr.name)
            .await?
            .into_iter()
            .map(|r| {
                let mut rule = toml::Table::new();
                rule.insert("client".into(), V::String(r.client_id.to_string()));
                rule.insert("match".into(), strings(r.conditions));
                V::Table(rule)
            })
            .collect();
        if !rules.is_empty() {
            t.insert("rules".into(), V::Array(rules));
        }
        out.push_str(&table("trusts", t));
    }
    Ok(out)
}

/// One `[[key]]` entry as TOML text.
fn table(key: &str, t: toml::Table) -> String {
    let mut doc = toml::Table::new();
    doc.insert(key.into(), toml::Value::Array(vec![toml::Value::Table(t)]));
    format!("{}\n", toml::to_string(&doc).expect("a table serialises"))
}
