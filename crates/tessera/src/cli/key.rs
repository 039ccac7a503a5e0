//! `tessera key list|rotate|remove`.

use clap::Subcommand;
use tessera_server::Settings;
use tessera_server::keys::{self, KekUse};
use tessera_store::{KeyStatus, Store};
use tessera_types::{Kid, SigningAlg};

use super::remote::{Remote, not_remote};
use super::{CliResult, now, rng};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List signing keys (public information only).
    List,
    /// Generate a new active key for an algorithm; the previous one is retired but stays
    /// published in the JWKS so tokens it signed keep validating.
    Rotate {
        /// ES256, RS256, PS256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: SigningAlg,
    },
    /// Stop publishing a retired key (after the tokens it signed have expired).
    Remove {
        /// Key id, as `tessera key list` prints it.
        #[arg(value_parser = |s: &str| Kid::new(s))]
        kid: Kid,
    },
}

pub async fn run(cmd: KeyCommand, store: &Store, settings: &Settings) -> CliResult {
    match cmd {
        KeyCommand::List => {
            for k in store.list_keys().await? {
                let status = match k.status {
                    KeyStatus::Active => "active",
                    KeyStatus::Retired => "retired",
                };
                println!("{}\t{}\t{}\tcreated_at={}", k.kid, k.alg, status, k.created_at.0);
            }
        }
        KeyCommand::Rotate { alg } => {
            // Never creates a key-encryption key, and refuses one that is not the store's.
            let kek = keys::open_kek(store, &settings.kek_file, KekUse::Cli, &rng(), now()).await?;
            let kid = keys::rotate(store, &kek, alg, &rng(), now()).await?;
            println!("new active {alg} key {kid}");
        }
        KeyCommand::Remove { kid } => {
            if !store.remove_retired_key(&kid, now()).await? {
                return Err(format!("no retired key {kid} (rotate an active key before removing it)").into());
            }
            println!("removed key {kid}");
        }
    }
    Ok(())
}

/// `key list` and `key rotate` through the admin API (`--server`); `key remove` stays local.
pub async fn run_remote(cmd: KeyCommand, remote: &Remote) -> CliResult {
    match cmd {
        KeyCommand::List => {
            let all = remote.get("/admin/keys").await?;
            for k in all["keys"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let text = |key: &str| k[key].as_str().unwrap_or_default().to_owned();
                println!("{}\t{}\t{}\tcreated_at={}", text("kid"), text("alg"), text("status"), k["created_at"]);
            }
        }
        KeyCommand::Rotate { alg } => {
            let body = serde_json::json!({ "alg": alg.as_str() });
            let answer = remote.call(reqwest::Method::POST, "/admin/keys/rotate", Some(body)).await?;
            println!("new active {alg} key {}", answer["kid"].as_str().unwrap_or_default());
        }
        KeyCommand::Remove { .. } => return Err(not_remote("key remove")),
    }
    Ok(())
}
