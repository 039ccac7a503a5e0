//! `tessera trust add|list|show|remove|test` and `tessera trust rule add|list|remove`
//! (issue 15: federated workload identity).

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use tessera_server::Settings;
use tessera_server::federation::trusts::{self, TrustSpec};
use tessera_store::{Store, TrustRecord};
use tessera_types::ClientId;

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

fn to_json(t: &TrustRecord) -> serde_json::Value {
    json!({
        "name": t.name,
        "kind": t.kind,
        "issuer": t.issuer,
        "keys": match (&t.jwks_uri, &t.jwks) {
            (Some(uri), _) => json!({ "jwks_uri": uri }),
            (None, Some(jwks)) => json!({ "jwks": serde_json::from_str::<serde_json::Value>(jwks).unwrap_or_default() }),
            (None, None) => json!("discovery"),
        },
        "tls_ca": if t.ca_pem.is_some() { "the trust's own CA" } else { "the platform's anchors and jwks_uri_ca_file" },
        "audience": t.audience,
        "max_token_age": t.max_token_age,
        "max_lifetime": t.max_lifetime,
        "max_uses": t.max_uses,
        "created_at": t.created_at,
    })
}

pub async fn run(cmd: TrustCommand, store: &Store, settings: &Settings) -> CliResult {
    match cmd {
        TrustCommand::Add(spec) => {
            let t = trusts::add_trust(store, spec, &settings.limits.client_keys, now()).await?;
            println!("added trust {} ({}, issuer {})", t.name, t.kind, t.issuer);
        }
        TrustCommand::List => {
            for t in store.list_trusts().await? {
                let rules = store.list_trust_rules(&t.name).await?.len();
                println!("{}\t{}\t{}\trules={rules}", t.name, t.kind, t.issuer);
            }
        }
        TrustCommand::Show { name } => {
            let t = store.get_trust(&name).await?.ok_or_else(|| format!("no trust {name}"))?;
            let mut doc = to_json(&t);
            // What rules may name beside the token's own claims.
            if let Some(kind) = trusts::TrustKind::parse(&t.kind) {
                doc["shorthand_claims"] = tessera_server::federation::kinds::shorthands(kind)
                    .iter()
                    .map(|(name, meaning)| json!({ "claim": name, "is": meaning }))
                    .collect();
            }
            doc["rules"] = store
                .list_trust_rules(&name)
                .await?
                .iter()
                .map(|r| json!({ "id": r.id, "client": r.client_id, "match": r.conditions }))
                .collect();
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
