//! Log output (issue 16): text for a person at a terminal, JSON lines for a collector, never
//! colour codes into a pipe or a file. Lines logged while a request is served carry its
//! `request_id` (the listener's span).

use std::io::IsTerminal as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text with colours on a terminal, JSON lines otherwise.
    Auto,
    /// Text (`key=value` fields); colours only on a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's fields, `target`,
    /// and `span` (with `request_id`) inside a request.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true).map_err(|_| format!("log_format {s:?} is not auto, text or json"))
    }
}

/// Installs the global subscriber. `RUST_LOG` filters; `default_level` otherwise.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Auto => !terminal,
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        // Flattened: a collector finds `message` and the fields at the top level.
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).with_ansi(false).init();
    } else {
        // Colour codes only for a person at a terminal, never into journald or a log file.
        builder.with_ansi(terminal).init();
    }
}
