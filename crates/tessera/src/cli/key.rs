//! `tessera key list|rotate|remove`.

use clap::Subcommand;
use tessera_server::Settings;
use tessera_server::keys::{self, KekUse};
use tessera_store::{KeyStatus, Store};
use tessera_types::{Kid, SigningAlg};

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
