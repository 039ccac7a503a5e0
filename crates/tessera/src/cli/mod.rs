//! Command-line interface: `serve` and `init`, and `scope`, `client`, `key` working on an
//! existing store.

mod apply;
mod audit;
mod client;
mod demo;
mod docs;
mod init;
mod key;
mod lock;
mod remote;
mod scope;
mod serve;
mod token;
mod trust;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera_server::{FileConfig, Overrides, Settings};
use tessera_store::Store;
use tessera_store::pg_url::DatabaseUrl;

/// Tessera: an OAuth 2.0 authorization server for machine-to-machine access.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text or JSON; `auto`: text on a terminal, JSON otherwise. Default: the
    /// configuration file's `log_format`, else auto.
    #[arg(long, global = true, env = "TESSERA_LOG_FORMAT", value_enum)]
    log_format: Option<crate::logging::LogFormat>,
    /// Print results as JSON: lists as one array, `add` commands as the registered object
    /// (with a generated secret, once). `show` commands always print JSON.
    #[arg(long, global = true)]
    json: bool,
}

/// Where the store is and how to open it: owned by the commands that touch the store, and
/// accepted anywhere after the command's name (`tessera client secret add X --data-dir D`).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Store options")]
pub struct StoreArgs {
    /// Data directory: embedded database, key-encryption key, development certificate.
    /// Default: the configuration file's `data_dir`, else ./tessera-data.
    #[arg(long, global = true, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Optional TOML configuration file.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// PostgreSQL (`postgres://user@host/db`) shared by several instances; without it, the
    /// embedded SQLite database in the data dir. On the command line a password is visible to
    /// other users (`ps`): put it in --database-url-file, TESSERA_DATABASE_URL, PGPASSWORD or
    /// ~/.pgpass. Remote hosts default to sslmode=verify-full.
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<DatabaseUrl>,
    /// Read the PostgreSQL URL (which may hold the password) from this file.
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL_FILE", value_name = "PATH")]
    database_url_file: Option<PathBuf>,
    /// Key-encryption key file (instances sharing a database must share it).
    #[arg(long, global = true, env = "TESSERA_KEY_ENCRYPTION_KEY_FILE", value_name = "PATH")]
    key_encryption_key_file: Option<PathBuf>,
}

/// A store command's own arguments (no subcommands), beside its store options.
#[derive(Debug, clap::Args)]
pub struct OnStoreArgs<A: clap::Args> {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    args: A,
}

/// A store command's own subcommands, under its store options.
#[derive(Debug, clap::Args)]
pub struct OnStore<C: Subcommand> {
    #[command(flatten)]
    store: StoreArgs,
    /// `--server URL`: through the admin API of a running server instead.
    #[command(flatten)]
    remote: remote::RemoteArgs,
    #[command(subcommand)]
    command: C,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server (creates the store and key-encryption key on first start).
    Serve(serve::ServeArgs),
    /// Create the store, the key-encryption key and signing keys, without serving. The other
    /// commands (scope, client, key) work only on an existing store.
    Init(StoreArgs),
    /// Manage scopes.
    Scope(OnStore<scope::ScopeCommand>),
    /// Manage clients and their secrets.
    Client(OnStore<client::ClientCommand>),
    /// Manage signing keys.
    Key(OnStore<key::KeyCommand>),
    /// Trust external issuers of workload identities, and map their workloads to clients.
    Trust(OnStore<trust::TrustCommand>),
    /// Revoke tokens.
    Token(OnStore<token::TokenCommand>),
    /// Read the audit trail: registry changes with who made them, and security events.
    Audit(OnStore<audit::AuditCommand>),
    /// Make the registry what a file says: plan, then create, update and (--prune) remove.
    Apply(OnStoreArgs<apply::ApplyArgs>),
    /// Write the registry as a file `apply` reads (no secret values).
    Export(OnStoreArgs<apply::ExportArgs>),
    /// The seed scenario: with no subcommand, everything in one process, then exit.
    Demo(demo::DemoArgs),
    /// Print a shell completion script: `tessera completions bash > /etc/bash_completion.d/tessera`.
    Completions {
        #[arg(value_enum)]
        shell: docs::Shell,
    },
    /// Print the man page (roff, the subcommands included): `tessera man > tessera.1`.
    Man,
}

impl Args {
    /// The log format: the command line (or environment), else `serve`'s configuration
    /// file, else auto. Read before anything else runs, so the file is parsed twice; its
    /// other errors are reported by the command itself.
    pub fn log_format(&self) -> Result<crate::logging::LogFormat, String> {
        if let Some(format) = self.log_format {
            return Ok(format);
        }
        let config = match &self.command {
            Command::Serve(serve) => serve.store.config.as_deref(),
            _ => None,
        };
        match config.and_then(|path| FileConfig::load(path).ok()).and_then(|f| f.log_format) {
            Some(text) => text.parse(),
            None => Ok(crate::logging::LogFormat::Auto),
        }
    }

    /// Whether this runs the server (which logs at info by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_) | Command::Demo(_))
    }

    /// The request threads' scheduling: `serve`'s option; the default policy for every other
    /// command (short-lived, or, for `demo`, clients and servers in one process).
    pub fn worker_scheduling(&self) -> crate::scheduling::WorkerScheduling {
        match &self.command {
            Command::Serve(serve) => serve.worker_scheduling,
            _ => crate::scheduling::WorkerScheduling::Normal,
        }
    }
}

/// Errors are printed as `error: ...` and exit 1.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Where a value came from, as far as secrets are concerned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance {
    /// `--database-url` was given on the command line (not from the environment).
    pub database_url_in_argv: bool,
}

/// Whether `--json` was given: read by the commands that print lists and additions.
static JSON_OUTPUT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn json_output() -> bool {
    JSON_OUTPUT.get().copied().unwrap_or(false)
}

/// Runs a parsed command line.
pub async fn run(args: Args, provenance: Provenance) -> CliResult {
    let _ = JSON_OUTPUT.set(args.json);
    match args.command {
        Command::Serve(serve) => {
            let (overrides, file) = serve.resolve(provenance)?;
            serve::run(overrides, file).await
        }
        Command::Init(store) => {
            let (base, file) = store.resolve(provenance)?;
            init::run(base, file).await
        }
        Command::Scope(cmd) if cmd.remote.is_remote() => scope::run_remote(cmd.command, &cmd.remote.connect()?).await,
        Command::Client(cmd) if cmd.remote.is_remote() => client::run_remote(cmd.command, &cmd.remote.connect()?).await,
        Command::Key(cmd) if cmd.remote.is_remote() => key::run_remote(cmd.command, &cmd.remote.connect()?).await,
        Command::Trust(cmd) if cmd.remote.is_remote() => trust::run_remote(cmd.command, &cmd.remote.connect()?).await,
        Command::Token(cmd) if cmd.remote.is_remote() => Err(remote::not_remote("token")),
        Command::Audit(cmd) if cmd.remote.is_remote() => Err(remote::not_remote("audit")),
        Command::Scope(cmd) => scope::run(cmd.command, &cmd.store.open(provenance).await?.0).await,
        Command::Client(cmd) => {
            let (store, settings) = cmd.store.open(provenance).await?;
            client::run(cmd.command, &store, &settings).await
        }
        Command::Token(cmd) => token::run(cmd.command, &cmd.store.open(provenance).await?.0).await,
        Command::Audit(cmd) => audit::run(cmd.command, &cmd.store.open(provenance).await?.0).await,
        Command::Apply(cmd) => {
            let (store, settings) = cmd.store.open(provenance).await?;
            apply::apply(cmd.args, &store, &settings).await
        }
        Command::Export(cmd) => apply::export(cmd.args, &cmd.store.open(provenance).await?.0).await,
        Command::Key(cmd) => {
            let (store, settings) = cmd.store.open(provenance).await?;
            key::run(cmd.command, &store, &settings).await
        }
        Command::Trust(cmd) => {
            let (store, settings) = cmd.store.open(provenance).await?;
            trust::run(cmd.command, &store, &settings).await
        }
        Command::Demo(args) => demo::run(args).await,
        Command::Completions { shell } => docs::completions(shell),
        Command::Man => docs::man(),
    }
}

impl StoreArgs {
    /// The command line's part of the settings, and the configuration file.
    fn resolve(self, provenance: Provenance) -> Result<(Overrides, FileConfig), Box<dyn std::error::Error>> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let database_url = match (self.database_url, &self.database_url_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "--database-url (or TESSERA_DATABASE_URL) and --database-url-file exclude each other".into()
                );
            }
            (Some(url), None) => {
                if provenance.database_url_in_argv && tessera_store::pg_url::has_password(url.expose()) {
                    tracing::warn!(
                        "the --database-url on the command line holds a password, visible to other users in `ps` \
                         and kept in shell history: use --database-url-file, TESSERA_DATABASE_URL, PGPASSWORD or \
                         ~/.pgpass"
                    );
                }
                Some(url)
            }
            (None, Some(path)) => Some(DatabaseUrl::new(read_one_line(path, "--database-url-file")?)),
            (None, None) => None,
        };
        let base = Overrides {
            data_dir: self.data_dir,
            database_url,
            kek_file: self.key_encryption_key_file,
            ..Default::default()
        };
        Ok((base, file))
    }

    /// Opens the existing store the settings name; creates nothing (a mistyped `--data-dir`
    /// or URL is an error naming what was looked at, not a new empty store).
    async fn open(self, provenance: Provenance) -> Result<(Store, Settings), Box<dyn std::error::Error>> {
        let (base, file) = self.resolve(provenance)?;
        let settings = Settings::resolve(base, file)?;
        let store = match &settings.database_url {
            Some(url) => Store::connect_existing_postgres(url.expose(), settings.database_pool_size).await?,
            None => Store::open_existing_embedded(&settings.data_dir).await?,
        };
        Ok((store.acting_as(cli_actor(), std::sync::Arc::new(tessera_server::clock::SystemClock)), settings))
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (systemd, containers): how every long-running
/// command is stopped.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Reads a file holding one secret line (`-`: standard input); the trailing newline is
/// stripped. `what` names the option in errors.
fn read_one_line(path: &std::path::Path, what: &str) -> Result<String, Box<dyn std::error::Error>> {
    let text = if path == std::path::Path::new("-") {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| format!("{what} -: {e}"))?;
        line
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?
    };
    let line = text.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(&text);
    if line.contains('\n') {
        return Err(format!("{what} {}: must hold one line", path.display()).into());
    }
    if line.is_empty() {
        return Err(format!("{what} {}: empty", path.display()).into());
    }
    Ok(line.to_owned())
}

/// Who the audit trail says made a change from this command line: the login name (and the
/// one behind sudo). Taken from the environment: whoever runs the CLI can write the store
/// anyway, so this names, it does not authenticate.
fn cli_actor() -> String {
    let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty() && v.len() <= 64);
    let user = var("USER").or_else(|| var("LOGNAME")).unwrap_or_else(|| "unknown".into());
    match var("SUDO_USER") {
        Some(by) if by != user => format!("cli:{user} (sudo by {by})"),
        _ => format!("cli:{user}"),
    }
}

/// Seconds in `90s`, `15m`, `12h`, `7d`.
fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?}: a duration like 90s, 15m, 12h or 7d");
    let scale = match text.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => return Err(bad()),
    };
    let n: i64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(scale).filter(|s| *s > 0).ok_or_else(bad)
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
