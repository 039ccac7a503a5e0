//! `tessera audit list`: the audit trail (issue 16) — registry changes with their actor, and
//! the running servers' security events.

use clap::Subcommand;
use serde_json::json;
use tessera_store::{AuditAction, AuditEntry, AuditQuery, Store};
use tessera_types::UnixTime;

use super::{CliResult, now, print_json};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries, oldest first (the latest --limit of them).
    List {
        /// Entries from this long ago (`90s`, `15m`, `12h`, `7d`) or since this Unix time.
        #[arg(long, value_parser = parse_since)]
        since: Option<Since>,
        /// Entries about this client (its registration, its failed authentications, the
        /// tokens revoked for it) or made by it (through the admin API).
        #[arg(long = "client")]
        client: Option<String>,
        /// Entries of this action only (e.g. client.added, auth.failed).
        #[arg(long, value_parser = |s: &str| AuditAction::parse(s).ok_or_else(|| format!("unknown action {s}; one of: {}", actions())))]
        action: Option<AuditAction>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
}

/// A point in time given relative to now or absolutely.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    Ago(i64),
    At(i64),
}

fn actions() -> String {
    AuditAction::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
}

fn parse_since(text: &str) -> Result<Since, String> {
    match text.parse() {
        Ok(at) => Ok(Since::At(at)),
        Err(_) => super::parse_duration(text).map(Since::Ago).map_err(|e| format!("{e}, or a Unix time")),
    }
}

fn to_json(e: &AuditEntry) -> serde_json::Value {
    json!({ "seq": e.seq, "at": e.at.0, "actor": e.actor, "action": e.action.as_str(), "target": e.target,
        "detail": e.detail })
}

pub async fn run(cmd: AuditCommand, store: &Store) -> CliResult {
    match cmd {
        AuditCommand::List { since, client, action, limit } => {
            let since = since.map(|s| match s {
                Since::Ago(secs) => now().plus(-secs),
                Since::At(t) => UnixTime(t),
            });
            let entries = store.list_audit(&AuditQuery { since, subject: client, action, limit: Some(limit) }).await?;
            if super::json_output() {
                print_json(&entries.iter().map(to_json).collect());
            } else {
                for e in &entries {
                    println!("{}\t{}\t{}\t{}\t{}\t{}", e.seq, e.at.0, e.actor, e.action, e.target, e.detail);
                }
            }
        }
    }
    Ok(())
}
