//! Why a token could not be had: the authority's RFC 6749 answer, or why it could not be asked.

use tessera_types::ErrorCode;

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The authorization server refused (RFC 6749 §5.2): not retried.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The RFC 6749 §5.2 error code, e.g. `invalid_client`, `invalid_scope`. An answer with
        /// a code outside [`ErrorCode`] is a [`ClientError::Protocol`] error instead.
        error: ErrorCode,
        /// The `error_description`, for people, if the authority sent one.
        description: Option<String>,
    },
    /// The server could not be reached or kept failing (retried with backoff first).
    #[error("the authorization server is unreachable: {0}")]
    Unreachable(String),
    /// The client's own credentials could not be used: the client assertion could not be
    /// signed, or no HTTP client could present the client certificate. Not retried.
    #[error("the client's credentials could not be used: {0}")]
    Credentials(String),
    /// Discovery or the token response was not what the specs say.
    #[error("unexpected answer from the authorization server: {0}")]
    Protocol(String),
}
