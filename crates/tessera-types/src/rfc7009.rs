//! RFC 7009 token revocation: the `token_type_hint` parameter.

/// §2.1 `token_type_hint`. "If the server is unable to locate the token using the given
/// hint, it MUST extend its search across all of its supported token types", and §2.2.1
/// allows `unsupported_token_type` only for types the server cannot revoke at all. Tessera
/// searches every kind whatever the hint, so a hint it does not know is kept as
/// [`TokenTypeHint::Unknown`] and ignored like the others, never refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
    /// Any other value (§2.1 allows extensions through the registry of §4.1.2).
    Unknown,
}

impl TokenTypeHint {
    /// Reads the parameter's value; never fails (see the type's documentation).
    pub fn parse(value: &str) -> Self {
        match value {
            "access_token" => Self::AccessToken,
            "refresh_token" => Self::RefreshToken,
            _ => Self::Unknown,
        }
    }

    /// The wire value, `None` for [`TokenTypeHint::Unknown`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::AccessToken => Some("access_token"),
            Self::RefreshToken => Some("refresh_token"),
            Self::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7009_2_1_unknown_hints_are_accepted_and_ignored() {
        assert_eq!(TokenTypeHint::parse("access_token"), TokenTypeHint::AccessToken);
        assert_eq!(TokenTypeHint::parse("refresh_token"), TokenTypeHint::RefreshToken);
        assert_eq!(TokenTypeHint::parse("id_token"), TokenTypeHint::Unknown);
        assert_eq!(TokenTypeHint::parse(""), TokenTypeHint::Unknown);
    }
}
