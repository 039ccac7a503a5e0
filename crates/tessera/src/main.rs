//! `tessera`: the authorization server and its administration CLI.

mod cli;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};

/// Whether `id` was given on the command line, in the command that owns it or any of its
/// subcommands (the store options are global below their command).
fn in_argv(matches: &ArgMatches, id: &str) -> bool {
    // Only a command that defines `id` may be asked where it came from.
    let known = matches.try_get_raw(id).is_ok();
    if known && matches.value_source(id) == Some(ValueSource::CommandLine) {
        return true;
    }
    matches.subcommand().is_some_and(|(_, sub)| in_argv(sub, id))
}

fn main() -> ExitCode {
    let matches = cli::Args::command().get_matches();
    let args = cli::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let provenance = cli::Provenance { database_url_in_argv: in_argv(&matches, "database_url") };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if args.is_serve() { "info" } else { "warn" })),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(cli::run(args, provenance)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
