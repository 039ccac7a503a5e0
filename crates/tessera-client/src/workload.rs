//! Workload identity (issue 15): a token the platform gave the workload — a Kubernetes
//! projected service-account token, a SPIFFE JWT-SVID written by SPIRE's helper, a CI job's
//! OIDC token — used instead of a client secret, read fresh for every token request because
//! the platform rotates it (Kubernetes rewrites the projected file before the token expires).

use std::path::PathBuf;
use std::time::Duration;

use crate::ClientError;

/// Largest workload token read (they are a few hundred bytes to a few KiB).
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

/// How long a token command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
enum Source {
    File(PathBuf),
    Command(Vec<String>),
}

/// Where the workload's token comes from, and how it is presented: as `client_assertion`
/// (RFC 7523 §2.2, the default) or as the JWT bearer grant (RFC 7523 §2.1). The server's
/// trust rules name the client either way. `Debug` shows where, never the token.
#[derive(Clone)]
pub struct WorkloadToken {
    source: Source,
    pub(crate) as_grant: bool,
}

impl std::fmt::Debug for WorkloadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::File(p) => write!(f, "WorkloadToken(file {})", p.display()),
            Source::Command(argv) => write!(f, "WorkloadToken(command {})", argv.first().map_or("", String::as_str)),
        }
    }
}

impl WorkloadToken {
    /// A token file, read at each token request (e.g.
    /// `/var/run/secrets/tokens/tessera`, a projected volume with `audience:` set to the
    /// authority's issuer).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self { source: Source::File(path.into()), as_grant: false }
    }

    /// A command whose standard output is the token (`argv[0]` and its arguments, no shell),
    /// run at each token request, within 10 s.
    pub fn command(argv: Vec<String>) -> Self {
        Self { source: Source::Command(argv), as_grant: false }
    }

    /// Presents the token as the JWT bearer grant (`grant_type=...jwt-bearer`) instead of as
    /// `client_assertion` with `client_credentials`.
    pub fn as_grant(mut self) -> Self {
        self.as_grant = true;
        self
    }

    /// The current token.
    pub(crate) async fn read(&self) -> Result<String, ClientError> {
        let fail = |why: String| ClientError::Credentials(format!("workload token: {why}"));
        let text = match &self.source {
            Source::File(path) => {
                let meta = tokio::fs::metadata(path).await.map_err(|e| fail(format!("{}: {e}", path.display())))?;
                if meta.len() > MAX_TOKEN_BYTES {
                    return Err(fail(format!("{} is larger than {MAX_TOKEN_BYTES} bytes", path.display())));
                }
                tokio::fs::read_to_string(path).await.map_err(|e| fail(format!("{}: {e}", path.display())))?
            }
            Source::Command(argv) => {
                let (program, args) = argv.split_first().ok_or_else(|| fail("empty command".into()))?;
                let run = tokio::process::Command::new(program).args(args).kill_on_drop(true).output();
                let out = tokio::time::timeout(COMMAND_TIMEOUT, run)
                    .await
                    .map_err(|_| fail(format!("{program} ran longer than {COMMAND_TIMEOUT:?}")))?
                    .map_err(|e| fail(format!("{program}: {e}")))?;
                if !out.status.success() {
                    return Err(fail(format!("{program} exited with {}", out.status)));
                }
                if out.stdout.len() as u64 > MAX_TOKEN_BYTES {
                    return Err(fail(format!("{program} printed more than {MAX_TOKEN_BYTES} bytes")));
                }
                String::from_utf8(out.stdout).map_err(|_| fail(format!("{program} printed no text")))?
            }
        };
        let token = text.trim();
        // A compact JWS: three base64url parts. Anything else is not sent anywhere.
        let ok = token.split('.').count() == 3
            && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(fail("not a compact JWT".into()));
        }
        Ok(token.to_owned())
    }
}
