//! `tessera completions SHELL` and `tessera man`: the command line described for shells and
//! for `man`, generated from the same definition clap parses (so they cannot drift).

use clap::{CommandFactory, ValueEnum};

use super::{Args, CliResult};

/// Shells `tessera completions` writes for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Writes the completion script for `shell` to standard output
/// (`tessera completions bash > /etc/bash_completion.d/tessera`).
pub fn completions(shell: Shell) -> CliResult {
    let mut cmd = Args::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Rendered whole first: the generator panics on a write error (`| head`).
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tessera", &mut text);
    emit(&text)
}

/// Writes to standard output; a reader that went away (`| head`) is not an error.
fn emit(bytes: &[u8]) -> CliResult {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes the man page (roff) to standard output (`tessera man > tessera.1`), its
/// subcommands as sections.
pub fn man() -> CliResult {
    let cmd = Args::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    // clap_mangen renders one page per command; the subcommands follow as their own pages,
    // concatenated, so that one file holds the whole reference.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("tessera-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone()).title(name).render(&mut out)?;
    }
    emit(&out)
}
