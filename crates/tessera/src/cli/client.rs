//! `tessera client add|list|show|remove|disable|enable` and `client secret add|remove`.

use clap::Subcommand;
use serde_json::json;
use tessera_server::Settings;
use tessera_server::admin::{self, NewClient};
use tessera_store::{ClientRecord, ClientUpdate, Store};
use tessera_types::ClientId;

use super::{CliResult, now, print_json, rng};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. Without --secret, a 256-bit secret is generated and shown once.
    Add {
        /// Client id.
        client_id: String,
        /// Scope the client may request; repeatable.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Import this secret (hashed with argon2id) instead of generating one.
        #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Permission: ept:token, ept:introspection, ept:revocation, gt:client_credentials,
        /// scp:SCOPE; repeatable. With none naming an endpoint or grant type, ept:token and
        /// gt:client_credentials are implied.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Access token lifetime in seconds (default 3600).
        #[arg(long)]
        lifetime: Option<i64>,
        /// Signing algorithm of its tokens (default: the server's first).
        #[arg(long)]
        signing_alg: Option<String>,
        /// Access token format: jwt (default) or reference (opaque, introspected, revocable).
        #[arg(long)]
        token_format: Option<String>,
    },
    /// Change a client's settings.
    Update {
        /// Client id.
        client_id: String,
        /// jwt or reference.
        #[arg(long)]
        token_format: Option<String>,
        /// Access token lifetime in seconds.
        #[arg(long)]
        lifetime: Option<i64>,
        /// Signing algorithm of its tokens.
        #[arg(long)]
        signing_alg: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Allow a further scope (must be registered); repeatable.
        #[arg(long = "add-scope")]
        add_scopes: Vec<String>,
        /// Withdraw a scope; repeatable.
        #[arg(long = "remove-scope")]
        remove_scopes: Vec<String>,
        /// Grant a permission (ept:introspection, ...); repeatable.
        #[arg(long = "add-permission")]
        add_permissions: Vec<String>,
        /// Withdraw a permission; repeatable.
        #[arg(long = "remove-permission")]
        remove_permissions: Vec<String>,
    },
    /// List clients.
    List,
    /// Show one client as JSON (secret ids, never secrets).
    Show {
        /// Client id.
        client_id: String,
    },
    /// Remove a client and its secrets.
    Remove {
        /// Client id.
        client_id: String,
    },
    /// Disable a client: it can no longer authenticate.
    Disable {
        /// Client id.
        client_id: String,
    },
    /// Enable a disabled client.
    Enable {
        /// Client id.
        client_id: String,
    },
    /// Manage a client's secrets (several may be active, for rotation).
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add a secret; without --secret one is generated and shown once.
    Add {
        /// Client id.
        client_id: String,
        /// Import this secret instead of generating one.
        #[arg(long, env = "TESSERA_CLIENT_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Remove a secret by its id (see `client show`).
    Remove {
        /// Client id.
        client_id: String,
        /// Secret id.
        secret_id: String,
    },
}

fn to_json(c: &ClientRecord) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "display_name": c.display_name,
        "enabled": c.enabled,
        "permissions": c.permissions,
        "access_token_lifetime": c.access_token_lifetime,
        "token_format": c.token_format,
        "signing_alg": c.signing_alg,
        "secrets": c.secrets.iter().map(|s| json!({
            "id": s.id,
            "kind": if s.hash.starts_with("sha256$") { "generated" } else { "imported (argon2id)" },
            "created_at": s.created_at,
        })).collect::<Vec<_>>(),
        "created_at": c.created_at,
    })
}

pub async fn run(cmd: ClientCommand, store: &Store, settings: &Settings) -> CliResult {
    let id = |s: &str| ClientId::new(s);
    match cmd {
        ClientCommand::Add {
            client_id,
            scopes,
            secret,
            permissions,
            display_name,
            lifetime,
            signing_alg,
            token_format,
        } => {
            let new = NewClient {
                client_id,
                display_name,
                secret,
                scopes,
                permissions,
                access_token_lifetime: lifetime,
                signing_alg,
                token_format,
            };
            let (record, generated) =
                admin::add_client(store, new, settings.access_token_lifetime, &rng(), now()).await?;
            println!("added client {}", record.client_id);
            if let Some(secret) = generated {
                println!("client_secret: {}", secret.expose());
                println!("(shown once: only its hash is stored)");
            }
        }
        ClientCommand::List => {
            for c in store.list_clients().await? {
                let perms: Vec<String> = c.permissions.iter().map(ToString::to_string).collect();
                println!(
                    "{}\t{}\tsecrets={}\t{}",
                    c.client_id,
                    if c.enabled { "enabled" } else { "disabled" },
                    c.secrets.len(),
                    perms.join(" ")
                );
            }
        }
        ClientCommand::Update {
            client_id,
            token_format,
            lifetime,
            signing_alg,
            display_name,
            add_scopes,
            remove_scopes,
            add_permissions,
            remove_permissions,
        } => {
            if let Some(l) = lifetime {
                tessera_server::config::validate_lifetime(l)?;
            }
            let changes = admin::PermissionChanges { add_scopes, remove_scopes, add_permissions, remove_permissions };
            let permissions = admin::changed_permissions(store, &id(&client_id)?, changes).await?;
            let update = ClientUpdate {
                display_name,
                access_token_lifetime: lifetime,
                token_format: token_format.map(|f| f.parse()).transpose()?,
                signing_alg: signing_alg.map(|a| a.parse()).transpose()?,
                permissions,
            };
            if !store.update_client(&id(&client_id)?, &update).await? {
                return Err(format!("no client {client_id}").into());
            }
            println!("updated client {client_id}");
        }
        ClientCommand::Show { client_id } => {
            let c = store.get_client(&id(&client_id)?).await?.ok_or_else(|| format!("no client {client_id}"))?;
            print_json(&to_json(&c));
        }
        ClientCommand::Remove { client_id } => {
            if !store.remove_client(&id(&client_id)?).await? {
                return Err(format!("no client {client_id}").into());
            }
            println!("removed client {client_id}");
        }
        ClientCommand::Disable { client_id } => set_enabled(store, &client_id, false).await?,
        ClientCommand::Enable { client_id } => set_enabled(store, &client_id, true).await?,
        ClientCommand::Secret(SecretCommand::Add { client_id, secret }) => {
            let (secret_id, generated) = admin::add_secret(store, &client_id, secret, &rng(), now()).await?;
            println!("added secret {secret_id} to client {client_id}");
            if let Some(secret) = generated {
                println!("client_secret: {}", secret.expose());
                println!("(shown once: only its hash is stored)");
            }
        }
        ClientCommand::Secret(SecretCommand::Remove { client_id, secret_id }) => {
            if !store.remove_secret(&id(&client_id)?, &secret_id).await? {
                return Err(format!("client {client_id} has no secret {secret_id}").into());
            }
            println!("removed secret {secret_id} from client {client_id}");
        }
    }
    Ok(())
}

async fn set_enabled(store: &Store, client_id: &str, enabled: bool) -> CliResult {
    if !store.set_client_enabled(&ClientId::new(client_id)?, enabled).await? {
        return Err(format!("no client {client_id}").into());
    }
    println!("{} client {client_id}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}
