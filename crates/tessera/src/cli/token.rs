//! `tessera token revoke --client ID`: for the day a client is compromised.

use clap::Subcommand;
use tessera_store::Store;
use tessera_types::{ClientId, UnixTime};

use super::{CliResult, now};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke every token a client holds: its reference tokens are deleted, and its JWTs
    /// issued until now are inactive at introspection (a per-client not-before). Running
    /// servers apply it within the registry poll interval. Rotate or remove its secrets too.
    Revoke {
        /// The client whose tokens are revoked.
        #[arg(long = "client", value_parser = |s: &str| ClientId::new(s))]
        client_id: ClientId,
    },
}

pub async fn run(cmd: TokenCommand, store: &Store) -> CliResult {
    match cmd {
        TokenCommand::Revoke { client_id } => {
            // iat has one-second resolution: tokens issued within this second are covered too.
            let not_before = UnixTime(now().0.saturating_add(1));
            let Some(deleted) = store.revoke_client_tokens(&client_id, not_before).await? else {
                return Err(format!("no client {client_id}").into());
            };
            println!(
                "revoked every token of client {client_id}: {deleted} reference tokens deleted, JWTs issued before {} inactive",
                not_before.0
            );
        }
    }
    Ok(())
}
