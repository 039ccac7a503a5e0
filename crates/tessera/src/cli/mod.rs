//! Command-line interface: `serve`, and `scope`, `client`, `key` working on the data dir.

mod client;
mod demo;
mod key;
mod scope;
mod serve;
mod token;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera_server::{FileConfig, Overrides, Settings};
use tessera_store::Store;

/// Tessera: an OAuth 2.0 authorization server for machine-to-machine access.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Args {
    /// Data directory: embedded database, key-encryption key, development certificate.
    #[arg(long, global = true, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Optional TOML configuration file.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL (`postgres://user:pass@host/db`) shared by several instances; without it,
    /// the embedded SQLite database in the data dir.
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Key-encryption key file (instances sharing a database must share it).
    #[arg(long, global = true, env = "TESSERA_KEY_ENCRYPTION_KEY_FILE")]
    key_encryption_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server.
    Serve(serve::ServeArgs),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(scope::ScopeCommand),
    /// Manage clients and their secrets.
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Revoke tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The seed scenario: with no subcommand, everything in one process, then exit.
    Demo(demo::DemoArgs),
}

impl Args {
    /// Whether this runs the server (which logs at info by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_) | Command::Demo(_))
    }
}

/// Errors are printed as `error: ...` and exit 1.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Runs a parsed command line.
pub async fn run(args: Args) -> CliResult {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let base = Overrides {
        data_dir: args.data_dir,
        database_url: args.database_url,
        kek_file: args.key_encryption_key_file,
        ..Default::default()
    };
    match args.command {
        Command::Serve(serve) => serve::run(serve.overrides(base), file).await,
        Command::Scope(cmd) => scope::run(cmd, &open(base, file).await?.0).await,
        Command::Client(cmd) => {
            let (store, settings) = open(base, file).await?;
            client::run(cmd, &store, &settings).await
        }
        Command::Demo(args) => demo::run(args).await,
        Command::Token(cmd) => token::run(cmd, &open(base, file).await?.0).await,
        Command::Key(cmd) => {
            let (store, settings) = open(base, file).await?;
            key::run(cmd, &store, &settings).await
        }
    }
}

async fn open(base: Overrides, file: FileConfig) -> Result<(Store, Settings), Box<dyn std::error::Error>> {
    let settings = Settings::resolve(base, file)?;
    let store = tessera_server::open_store(&settings).await?;
    Ok((store, settings))
}

fn now() -> tessera_types::UnixTime {
    use tessera_server::clock::Clock as _;
    tessera_server::clock::SystemClock.now()
}

fn rng() -> tessera_server::clock::SystemRandom {
    tessera_server::clock::SystemRandom::default()
}

/// Prints a value as pretty JSON.
fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("json"));
}
