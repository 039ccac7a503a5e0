//! `tessera apply` and `tessera export`: the registry kept in a file (issue 16).

use std::path::PathBuf;

use clap::Args;
use tessera_server::Settings;
use tessera_server::declarative::{self, Context, RegistryFile};
use tessera_store::Store;

use super::{CliResult, now, rng};

/// `tessera apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The registry file: [[scopes]], [[clients]] (secrets by secret_file or secret_env,
    /// never inline), [[trusts]] with [[trusts.rules]].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Also remove the scopes, clients and trusts the file does not name.
    #[arg(long)]
    prune: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `tessera export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn apply(args: ApplyArgs, store: &Store, settings: &Settings) -> CliResult {
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let file = RegistryFile::parse(&text, &args.file)?;
    let rng = rng();
    let cx = Context {
        default_lifetime: settings.access_token_lifetime,
        bounds: &settings.limits.client_keys,
        rng: &rng,
        now: now(),
    };
    let steps = declarative::plan(store, file, &cx, args.prune).await?;
    if steps.is_empty() {
        println!("no changes: the store is as {} says", args.file.display());
        return Ok(());
    }
    println!("plan ({} changes):", steps.len());
    for step in &steps {
        println!("  {step}");
    }
    if args.dry_run {
        println!("dry run: nothing changed");
        return Ok(());
    }
    let generated = declarative::apply(store, steps, &cx).await?;
    println!("applied");
    for (client_id, secret) in generated {
        println!("client_secret of {client_id}: {}", secret.expose());
        println!("  (shown once: only its hash is stored)");
    }
    Ok(())
}

pub async fn export(args: ExportArgs, store: &Store) -> CliResult {
    let text = declarative::export(store).await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("exported the registry to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
