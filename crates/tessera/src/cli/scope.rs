//! `tessera scope add|list|show|remove`.

use std::collections::BTreeMap;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;
use tessera_server::admin::{self, ScopeSpec};
use tessera_server::admin_api::{builtin, views};
use tessera_store::{ScopeRecord, Store};
use tessera_types::ScopeName;

use super::remote::{Remote, segment};
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

/// One line of `scope list`: name, resources, display name (or that it is built in).
fn line(name: &str, resources: &[&str], display_name: Option<&str>, built_in: bool) -> String {
    let last = if built_in { "(built in)" } else { display_name.unwrap_or("") };
    format!("{name}\tresources={}\t{last}", resources.join(","))
}

fn print_list<'a>(scopes: impl Iterator<Item = (&'a ScopeRecord, bool)>) {
    for (s, built_in) in scopes {
        let resources: Vec<&str> = s.resources.iter().map(|r| r.as_str()).collect();
        println!("{}", line(s.name.as_str(), &resources, s.display_name.as_deref(), built_in));
    }
}

pub async fn run(cmd: ScopeCommand, store: &Store) -> CliResult {
    match cmd {
        ScopeCommand::Add { spec, display_names } => {
            let spec = ScopeSpec { display_names: display_names.into_iter().collect::<BTreeMap<_, _>>(), ..spec };
            let record = admin::add_scope(store, spec, now()).await?;
            if super::json_output() {
                print_json(&views::scope(&record, false));
            } else {
                println!("added scope {}", record.name);
            }
        }
        ScopeCommand::List => {
            let registered = store.list_scopes().await?;
            let all = registered.iter().map(|s| (s, false)).chain(builtin::scopes().iter().map(|s| (s, true)));
            if super::json_output() {
                print_json(&all.map(|(s, b)| views::scope(s, b)).collect());
            } else {
                print_list(all);
            }
        }
        ScopeCommand::Show { name } => {
            let view = match builtin::scope(&name) {
                Some(b) => views::scope(b, true),
                None => views::scope(&store.get_scope(&name).await?.ok_or_else(|| format!("no scope {name}"))?, false),
            };
            print_json(&view);
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

/// The same commands through the admin API (`--server`).
pub async fn run_remote(cmd: ScopeCommand, remote: &Remote) -> CliResult {
    match cmd {
        ScopeCommand::Add { spec, display_names } => {
            let display_names: BTreeMap<_, _> = spec.display_names.into_iter().chain(display_names).collect();
            let mut body = json!({ "name": spec.name, "resources": spec.resources, "display_names": display_names });
            if let Some(d) = spec.display_name {
                body["display_name"] = d.into();
            }
            if let Some(d) = spec.description {
                body["description"] = d.into();
            }
            let added = remote.call(Method::POST, "/admin/scopes", Some(body)).await?;
            println!("added scope {}", added["name"].as_str().unwrap_or_default());
        }
        ScopeCommand::List => {
            let all = remote.get("/admin/scopes").await?;
            if super::json_output() {
                print_json(&all["scopes"]);
                return Ok(());
            }
            for s in all["scopes"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let resources = super::remote::strings(&s["resources"]);
                let built_in = s["built_in"].as_bool().unwrap_or(false);
                println!(
                    "{}",
                    line(s["name"].as_str().unwrap_or_default(), &resources, s["display_name"].as_str(), built_in)
                );
            }
        }
        ScopeCommand::Show { name } => {
            print_json(&remote.get(&format!("/admin/scopes/{}", segment(name.as_str()))).await?)
        }
        ScopeCommand::Remove { name } => {
            remote.call(Method::DELETE, &format!("/admin/scopes/{}", segment(name.as_str())), None).await?;
            println!("removed scope {name}");
        }
    }
    Ok(())
}
