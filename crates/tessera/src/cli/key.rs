//! `tessera key list|rotate|remove`.

use clap::Subcommand;
use tessera_server::Settings;
use tessera_server::keys::{self, KekUse};
use tessera_server::rotation;
use tessera_store::Store;
use tessera_types::{Kid, SigningAlg};

use super::remote::{Remote, not_remote};
use super::{CliResult, now, rng};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List signing keys with their phase (next, active, retired) and dates (public
    /// information only).
    List,
    /// Force the next step of the rotation cycle for an algorithm: publish the next key
    /// (signing after key_prepublish_s), or, when one is published, make it sign now. The
    /// key it replaces stays published until the tokens it signed have expired.
    Rotate {
        /// ES256, RS256, PS256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: SigningAlg,
        /// A new key signs at once, unannounced (a compromised key): verifiers that cached
        /// the JWK Set refetch it when they meet the new kid.
        #[arg(long)]
        now: bool,
    },
    /// Stop publishing a retired key. Refused while tokens it signed may still be valid.
    Remove {
        /// Key id, as `tessera key list` prints it.
        #[arg(value_parser = |s: &str| Kid::new(s))]
        kid: Kid,
        /// Remove it even so: tokens it signed stop validating (a compromised key).
        #[arg(long)]
        force: bool,
    },
}

fn time(t: Option<tessera_types::UnixTime>) -> String {
    t.map_or_else(|| "-".into(), |t| t.0.to_string())
}

pub async fn run(cmd: KeyCommand, store: &Store, settings: &Settings) -> CliResult {
    match cmd {
        KeyCommand::List => {
            let keys = store.list_keys().await?;
            if super::json_output() {
                let doc: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "kid": k.kid.as_str(), "alg": k.alg.as_str(), "phase": k.status.as_str(),
                            "created_at": k.created_at.0, "activates_at": k.activates_at.map(|t| t.0),
                            "retired_at": k.retired_at.map(|t| t.0), "remove_after": k.remove_after.map(|t| t.0),
                        })
                    })
                    .collect();
                super::print_json(&serde_json::Value::Array(doc));
            } else {
                for k in keys {
                    println!(
                        "{}\t{}\t{}\tcreated_at={}\tsigns_from={}\tretired_at={}\tremove_after={}",
                        k.kid,
                        k.alg,
                        k.status.as_str(),
                        k.created_at.0,
                        time(k.activates_at),
                        time(k.retired_at),
                        time(k.remove_after)
                    );
                }
            }
        }
        KeyCommand::Rotate { alg, now: at_once } => {
            // Never creates a key-encryption key, and refuses one that is not the store's.
            let kek = keys::open_kek(store, &settings.kek_file, KekUse::Cli, &rng(), now()).await?;
            if at_once {
                let kid = keys::rotate(store, &kek, alg, settings.access_token_lifetime, &rng(), now()).await?;
                println!("new active {alg} key {kid} (signing now)");
                return Ok(());
            }
            let step = rotation::force_step(
                store,
                &kek,
                alg,
                settings.key_rotation,
                settings.access_token_lifetime,
                &rng(),
                now(),
            )
            .await?;
            println!("{step}");
        }
        KeyCommand::Remove { kid, force } => {
            keys::remove(store, &kid, force, now()).await?;
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
            if super::json_output() {
                super::print_json(&all["keys"]);
                return Ok(());
            }
            for k in all["keys"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let text = |key: &str| k[key].as_str().unwrap_or_default().to_owned();
                let at = |key: &str| k[key].as_i64().map_or_else(|| "-".to_owned(), |t| t.to_string());
                println!(
                    "{}\t{}\t{}\tcreated_at={}\tsigns_from={}\tretired_at={}\tremove_after={}",
                    text("kid"),
                    text("alg"),
                    text("status"),
                    at("created_at"),
                    at("activates_at"),
                    at("retired_at"),
                    at("remove_after")
                );
            }
        }
        KeyCommand::Rotate { alg, now } => {
            let body = serde_json::json!({ "alg": alg.as_str(), "now": now });
            let answer = remote.call(reqwest::Method::POST, "/admin/keys/rotate", Some(body)).await?;
            println!("{}", answer["done"].as_str().unwrap_or_default());
        }
        KeyCommand::Remove { .. } => return Err(not_remote("key remove")),
    }
    Ok(())
}
