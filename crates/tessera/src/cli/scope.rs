//! `tessera scope add|list|show|remove`.

use std::collections::BTreeMap;

use clap::Subcommand;
use serde_json::json;
use tessera_server::admin::{self, ScopeSpec};
use tessera_store::{ScopeRecord, Store};
use tessera_types::ScopeName;

use super::{CliResult, now, print_json};

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Register a scope.
    Add {
        #[command(flatten)]
        spec: ScopeSpec,
        /// Display name for a culture, as CULTURE=TEXT (e.g. fr-FR=Enregistrements); repeatable.
        #[arg(long = "display-name-for", value_parser = parse_localized)]
        display_names: Vec<(String, String)>,
    },
    /// List scopes.
    List,
    /// Show one scope as JSON.
    Show {
        /// Scope name.
        #[arg(value_parser = |s: &str| ScopeName::new(s))]
        name: ScopeName,
    },
    /// Remove a scope.
    Remove {
        /// Scope name.
        #[arg(value_parser = |s: &str| ScopeName::new(s))]
        name: ScopeName,
    },
}

fn parse_localized(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(c, t)| (c.to_string(), t.to_string())).ok_or_else(|| "expected CULTURE=TEXT".to_string())
}

fn to_json(s: &ScopeRecord) -> serde_json::Value {
    json!({
        "name": s.name,
        "display_name": s.display_name,
        "display_names": s.display_names,
        "description": s.description,
        "resources": s.resources,
        "created_at": s.created_at,
    })
}

pub async fn run(cmd: ScopeCommand, store: &Store) -> CliResult {
    match cmd {
        ScopeCommand::Add { spec, display_names } => {
            let spec = ScopeSpec { display_names: display_names.into_iter().collect::<BTreeMap<_, _>>(), ..spec };
            let record = admin::add_scope(store, spec, now()).await?;
            println!("added scope {}", record.name);
        }
        ScopeCommand::List => {
            for s in store.list_scopes().await? {
                let resources: Vec<&str> = s.resources.iter().map(|r| r.as_str()).collect();
                println!("{}\tresources={}\t{}", s.name, resources.join(","), s.display_name.as_deref().unwrap_or(""));
            }
        }
        ScopeCommand::Show { name } => {
            let s = store.get_scope(&name).await?.ok_or_else(|| format!("no scope {name}"))?;
            print_json(&to_json(&s));
        }
        ScopeCommand::Remove { name } => {
            if !store.remove_scope(&name).await? {
                return Err(format!("no scope {name}").into());
            }
            println!("removed scope {name}");
        }
    }
    Ok(())
}
