//! `tessera trust add|list|show|remove|test` and `tessera trust rule add|list|remove`
//! (issue 15: federated workload identity).

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::Settings;
use tessera_server::admin_api::views;
use tessera_server::federation::trusts::{self, TrustSpec};
use tessera_store::Store;
use tessera_types::ClientId;

use super::remote::{Remote, not_remote, segment};
use super::{CliResult, now, print_json};

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust an external issuer of workload identities (Kubernetes, SPIFFE, GitHub Actions,
    /// any OIDC issuer).
    Add(TrustSpec),
    /// List trusts.
    List,
    /// Show one trust and its rules as JSON.
    Show {
        /// Trust name.
        name: String,
    },
    /// Remove a trust and its rules.
    Remove {
        /// Trust name.
        name: String,
    },
    /// Manage the claim rules that map a trust's workloads to clients.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Explain which rule a token would match, and why the rules before it do not (exit
    /// status 1 when none matches).
    Test {
        /// Trust name.
        name: String,
        /// A file holding the external token (a compact JWT).
        #[arg(long)]
        token: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Append a rule, evaluated after the existing ones: when every --match holds, the
    /// workload acts as --client. PATTERN: exact, `*` within one `/`- or `:`-separated
    /// segment, `**` across segments, `|` between alternatives; CLAIM: a claim name, or an
    /// RFC 6901 JSON Pointer (`/kubernetes.io/namespace`).
    Add {
        /// Trust name.
        trust: String,
        /// The client whose scopes and permissions matching workloads get.
        #[arg(long, value_parser = |s: &str| ClientId::new(s))]
        client: ClientId,
        /// CLAIM=PATTERN; repeatable, all must hold.
        #[arg(long = "match", value_name = "CLAIM=PATTERN", required = true)]
        matches: Vec<String>,
    },
    /// List a trust's rules in evaluation order.
    List {
        /// Trust name.
        trust: String,
    },
    /// Remove a rule.
    Remove {
        /// Trust name.
        trust: String,
        /// Rule id (from `trust rule list`).
        id: i64,
    },
}

pub async fn run(cmd: TrustCommand, store: &Store, settings: &Settings) -> CliResult {
    match cmd {
        TrustCommand::Add(spec) => {
            let t = trusts::add_trust(store, spec, &settings.limits.client_keys, now()).await?;
            println!("added trust {} ({}, issuer {})", t.name, t.kind, t.issuer);
        }
        TrustCommand::List => {
            let mut all = Vec::new();
            for t in store.list_trusts().await? {
                let rules = store.list_trust_rules(&t.name).await?;
                if !super::json_output() {
                    println!("{}\t{}\t{}\trules={}", t.name, t.kind, t.issuer, rules.len());
                }
                all.push(views::trust(&t, &rules));
            }
            if super::json_output() {
                print_json(&all.into());
            }
        }
        TrustCommand::Show { name } => {
            let t = store.get_trust(&name).await?.ok_or_else(|| format!("no trust {name}"))?;
            let mut doc = views::trust(&t, &store.list_trust_rules(&name).await?);
            // What rules may name beside the token's own claims.
            if let Some(kind) = trusts::TrustKind::parse(&t.kind) {
                doc["shorthand_claims"] = tessera_server::federation::kinds::shorthands(kind)
                    .iter()
                    .map(|(name, meaning)| json!({ "claim": name, "is": meaning }))
                    .collect();
            }
            print_json(&doc);
        }
        TrustCommand::Remove { name } => {
            if !store.remove_trust(&name).await? {
                return Err(format!("no trust {name}").into());
            }
            println!("removed trust {name} and its rules");
        }
        TrustCommand::Rule(RuleCommand::Add { trust, client, matches }) => {
            let id = trusts::add_rule(store, &trust, &client, &matches, now()).await?;
            println!("added rule {id} to trust {trust}: {} -> client {client}", matches.join(" and "));
        }
        TrustCommand::Rule(RuleCommand::List { trust }) => {
            store.get_trust(&trust).await?.ok_or_else(|| format!("no trust {trust}"))?;
            for r in store.list_trust_rules(&trust).await? {
                println!("{}\tclient={}\t{}", r.id, r.client_id, r.conditions.join(" "));
            }
        }
        TrustCommand::Rule(RuleCommand::Remove { trust, id }) => {
            if !store.remove_trust_rule(&trust, id).await? {
                return Err(format!("trust {trust} has no rule {id}").into());
            }
            println!("removed rule {id} of trust {trust}");
        }
        TrustCommand::Test { name, token } => {
            let t = store.get_trust(&name).await?.ok_or_else(|| format!("no trust {name}"))?;
            let rules = trusts::rule_set(&store.list_trust_rules(&name).await?);
            let text = std::fs::read_to_string(&token).map_err(|e| format!("{}: {e}", token.display()))?;
            let report = trusts::explain(&t, &rules, text.trim(), settings.issuer.as_ref().map(|i| i.as_str()));
            for (what, outcome) in &report.checks {
                match outcome {
                    Ok(detail) => println!("{what}: ok ({detail})"),
                    Err(why) => println!("{what}: FAILS: {why}"),
                }
            }
            for (id, why) in &report.rules.misses {
                println!("rule {id}: no match: {why}");
            }
            match &report.rules.matched {
                Some(rule) => println!("rule {}: MATCHES: the workload acts as client {}", rule.id, rule.client),
                None => return Err(format!("no rule of trust {name} matches this token").into()),
            }
            if report.checks.iter().any(|(_, o)| o.is_err()) {
                return Err("the token would be refused (see above)".into());
            }
        }
    }
    Ok(())
}

/// The same commands through the admin API (`--server`); `trust test` (which reads a token
/// file and explains) stays local. A `--jwks-file` is read here and sent inline; a trust's
/// own `--ca` is set locally only.
pub async fn run_remote(cmd: TrustCommand, remote: &Remote) -> CliResult {
    let path = |name: &str| format!("/admin/trusts/{}", segment(name));
    match cmd {
        TrustCommand::Add(spec) => {
            if spec.ca_file.is_some() {
                return Err(not_remote("trust add --ca"));
            }
            let mut body = json!({ "name": spec.name, "issuer": spec.issuer, "kind": spec.kind.as_str() });
            let mut set = |key: &str, value: Value| {
                if !value.is_null() {
                    body[key] = value;
                }
            };
            set("jwks_uri", spec.jwks_uri.as_ref().map(|u| u.as_str()).into());
            if let Some(file) = &spec.jwks_file {
                let text = std::fs::read_to_string(file).map_err(|e| format!("--jwks-file {}: {e}", file.display()))?;
                set("jwks", serde_json::from_str(&text).map_err(|e| format!("--jwks-file {}: {e}", file.display()))?);
            }
            set("audience", spec.audience.clone().into());
            set("max_token_age", spec.max_token_age.into());
            set("max_lifetime", spec.max_lifetime.into());
            set("max_uses", spec.max_uses.into());
            let t = remote.call(Method::POST, "/admin/trusts", Some(body)).await?;
            let text = |key: &str| t[key].as_str().unwrap_or_default().to_owned();
            println!("added trust {} ({}, issuer {})", text("name"), text("kind"), text("issuer"));
        }
        TrustCommand::List => {
            let all = remote.get("/admin/trusts").await?;
            if super::json_output() {
                print_json(&all["trusts"]);
                return Ok(());
            }
            for t in all["trusts"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let text = |key: &str| t[key].as_str().unwrap_or_default().to_owned();
                let rules = t["rules"].as_array().map_or(0, Vec::len);
                println!("{}\t{}\t{}\trules={rules}", text("name"), text("kind"), text("issuer"));
            }
        }
        TrustCommand::Show { name } => print_json(&remote.get(&path(&name)).await?),
        TrustCommand::Remove { name } => {
            remote.call(Method::DELETE, &path(&name), None).await?;
            println!("removed trust {name} and its rules");
        }
        TrustCommand::Rule(RuleCommand::Add { trust, client, matches }) => {
            let body = json!({ "client": client, "match": matches });
            let answer = remote.call(Method::POST, &format!("{}/rules", path(&trust)), Some(body)).await?;
            println!("added rule {} to trust {trust}: {} -> client {client}", answer["id"], matches.join(" and "));
        }
        TrustCommand::Rule(RuleCommand::List { trust }) => {
            let t = remote.get(&path(&trust)).await?;
            for r in t["rules"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let conditions = super::remote::strings(&r["match"]);
                println!("{}\tclient={}\t{}", r["id"], r["client"].as_str().unwrap_or_default(), conditions.join(" "));
            }
        }
        TrustCommand::Rule(RuleCommand::Remove { trust, id }) => {
            remote.call(Method::DELETE, &format!("{}/rules/{id}", path(&trust)), None).await?;
            println!("removed rule {id} of trust {trust}");
        }
        TrustCommand::Test { .. } => return Err(not_remote("trust test")),
    }
    Ok(())
}
