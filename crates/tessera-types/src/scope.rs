//! Scope tokens and sets (RFC 6749 §3.3).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// One scope token (RFC 6749 §3.3: `scope-token = 1*NQCHAR`,
/// NQCHAR = %x21 / %x23-5B / %x5D-7E).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeName(String);

impl ScopeName {
    /// Parses one scope token.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let err = |why| InvalidValue { what: "scope", why };
        if value.is_empty() {
            return Err(err("empty"));
        }
        if value.len() > 200 {
            return Err(err("longer than 200 characters"));
        }
        let nqchar = |c: char| c == '\x21' || ('\x23'..='\x5b').contains(&c) || ('\x5d'..='\x7e').contains(&c);
        if !value.chars().all(nqchar) {
            return Err(err("characters outside NQCHAR (RFC 6749 §3.3)"));
        }
        Ok(Self(value))
    }
}

crate::ids::text_value!(ScopeName);

/// A set of scopes, written space-delimited on the wire (RFC 6749 §3.3); order does not
/// matter and duplicates collapse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<ScopeName>);

impl ScopeSet {
    /// Parses `scope = scope-token *( SP scope-token )`. A single space separates tokens;
    /// leading, trailing or doubled spaces are refused, as the ABNF has no room for them.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        let mut set = BTreeSet::new();
        for token in value.split(' ') {
            if token.is_empty() {
                return Err(InvalidValue { what: "scope", why: "empty scope-token (extra space)" });
            }
            set.insert(ScopeName::new(token)?);
        }
        Ok(Self(set))
    }

    /// Reads a scope value written by another issuer (a JWT `scope` claim, an introspection
    /// answer): any run of spaces separates, and tokens outside NQCHAR are dropped rather than
    /// failing the whole token. Dropping is safe: a [`ScopeName`] can never equal them, so no
    /// policy can be satisfied by them.
    pub fn parse_lenient(value: &str) -> Self {
        value.split(' ').filter_map(|t| ScopeName::new(t).ok()).collect()
    }

    /// Whether every scope of `other` is in the set.
    pub fn contains_all(&self, other: &ScopeSet) -> bool {
        other.0.is_subset(&self.0)
    }

    /// Whether at least one scope of `other` is in the set.
    pub fn contains_any(&self, other: &ScopeSet) -> bool {
        !self.0.is_disjoint(&other.0)
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds every scope of `other`.
    pub fn extend(&mut self, other: impl IntoIterator<Item = ScopeName>) {
        self.0.extend(other);
    }

    /// Whether no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &ScopeName) -> bool {
        self.0.contains(scope)
    }

    /// The scopes, in lexical order.
    pub fn iter(&self) -> impl Iterator<Item = &ScopeName> {
        self.0.iter()
    }

    #[allow(missing_docs)]
    pub fn insert(&mut self, scope: ScopeName) {
        self.0.insert(scope);
    }
}

impl FromIterator<ScopeName> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = ScopeName>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl std::str::FromStr for ScopeSet {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl IntoIterator for ScopeSet {
    type Item = ScopeName;
    type IntoIter = std::collections::btree_set::IntoIter<ScopeName>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_3_scope_is_space_delimited_nqchar() {
        let s = ScopeSet::parse("b a b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert!(ScopeSet::parse("a  b").is_err());
        assert!(ScopeSet::parse(" a").is_err());
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
        assert!(ScopeSet::parse("").is_err());
    }

    #[test]
    fn scopes_of_other_issuers_are_read_leniently() {
        assert_eq!(ScopeSet::parse_lenient("  a  b\"c b ").to_string(), "a b");
        assert!(ScopeSet::parse_lenient("").is_empty());
    }
}
