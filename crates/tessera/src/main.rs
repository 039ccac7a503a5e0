//! `tessera`: the authorization server and its administration CLI.

mod cli;
mod logging;
mod scheduling;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};

// glibc's malloc and free were ~12% of the server's CPU issuing ES256 tokens (issue 17):
// every request allocates its headers, form, claims and response and frees them on another
// task. mimalloc's thread-local free lists measured +11% ES256 issuance and +9–30% durable
// reference issuance (alternating A/B, one core).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// On Linux mimalloc commits each arena eagerly by default (`arena_eager_commit = 2`), which kept
// ~14 MiB more resident in every scenario (idle 50 → 36 MiB, ES256 load 35 → 22, reference-token
// load 77 → 62) for no measured speed (issue 17, alternating runs). The default is changed in a
// constructor that runs before mimalloc's own (priority 101) initialises it; as a default only:
// `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still decides.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static MIMALLOC_DEFAULTS: extern "C" fn() = {
    extern "C" fn set_defaults() {
        unsafe extern "C" {
            fn mi_option_set_default(option: std::ffi::c_int, value: std::ffi::c_long);
        }
        // `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_t`; the CLI test
        // `allocator_commits_arenas_lazily` reads the option back by name.
        const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
        // SAFETY: sets one entry of mimalloc's static option table; valid before its init.
        unsafe { mi_option_set_default(ARENA_EAGER_COMMIT, 0) }
    }
    set_defaults
};

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
    let log_format = match args.log_format() {
        Ok(format) => format,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(log_format, if args.is_serve() { "info" } else { "warn" });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if args.worker_scheduling() == scheduling::WorkerScheduling::Batch {
        runtime.on_thread_start(scheduling::batch_this_thread);
    }
    let runtime = runtime.build().expect("tokio runtime");
    let outcome = runtime.block_on(cli::run(args, provenance));
    logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
