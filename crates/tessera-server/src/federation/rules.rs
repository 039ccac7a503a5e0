//! Claim rules (issue 15): how one trust maps many workloads to Tessera clients. A rule is a
//! set of conditions over the external token's claims, all of which must hold, and the client
//! whose scopes and permissions a matching workload gets.
//!
//! Order: rules are evaluated in the order they were added (their position), and the first
//! whose conditions all hold wins — as firewall rules are, so that an operator reads the
//! outcome off the list. To stay cheap with thousands of rules, each rule with an exact,
//! single-valued condition is indexed under its first one (claim and value): a token only
//! evaluates the rules indexed under values it actually carries, plus the rules that have no
//! exact condition, in position order.

use std::collections::HashMap;

use serde_json::Value;

/// Separators of segments in a claim value: `system:serviceaccount:ns:sa`, `repo:acme/app:ref`,
/// `spiffe://prod.acme/ns/billing/sa/api`.
fn is_separator(c: char) -> bool {
    c == '/' || c == ':'
}

/// One alternative of a pattern: literal characters, `*` (any run within one segment) and
/// `**` (any run, separators included).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Char(char),
    /// `*`.
    Segment,
    /// `**`.
    Any,
}

/// What a claim must be: one of `|`-separated alternatives, each exact or a glob (`*` within
/// one `/`- or `:`-separated segment, `**` across segments). A claim holding an array matches
/// when one of its elements does; numbers and booleans compare as their JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    alternatives: Vec<Vec<Piece>>,
}

/// Longest pattern accepted: patterns come from operators, but are matched on every request.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Why a pattern or rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

impl Pattern {
    /// Parses `text`. Empty alternatives, more than two `*` in a row and over-long patterns are
    /// refused.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if text.is_empty() || text.len() > MAX_PATTERN_LEN {
            return Err(RuleError(format!("a pattern has 1 to {MAX_PATTERN_LEN} characters")));
        }
        let mut alternatives = Vec::new();
        for alt in text.split('|') {
            if alt.is_empty() {
                return Err(RuleError(format!("pattern {text:?} has an empty alternative")));
            }
            let mut pieces = Vec::new();
            let mut chars = alt.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '*' {
                    pieces.push(Piece::Char(c));
                    continue;
                }
                if chars.peek() == Some(&'*') {
                    chars.next();
                    if chars.peek() == Some(&'*') {
                        return Err(RuleError(format!("pattern {text:?}: use * or **, not ***")));
                    }
                    pieces.push(Piece::Any);
                } else {
                    pieces.push(Piece::Segment);
                }
            }
            alternatives.push(pieces);
        }
        Ok(Self { text: text.to_owned(), alternatives })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value this pattern is equal to, when it is one exact value (no glob, no
    /// alternatives): what the index keys on.
    fn exact(&self) -> Option<&str> {
        match self.alternatives.as_slice() {
            [one] if one.iter().all(|p| matches!(p, Piece::Char(_))) => Some(&self.text),
            _ => None,
        }
    }

    /// Whether `value` matches one of the alternatives.
    pub fn matches(&self, value: &str) -> bool {
        let value: Vec<char> = value.chars().collect();
        self.alternatives.iter().any(|alt| glob(alt, &value))
    }
}

/// Glob matching by dynamic programming over (piece, character): O(pieces × characters),
/// whatever the pattern, so no pattern makes a request slow.
fn glob(pieces: &[Piece], value: &[char]) -> bool {
    // `row[j]`: the pieces so far match `value[..j]`.
    let mut row = vec![false; value.len() + 1];
    row[0] = true;
    for piece in pieces {
        let mut next = vec![false; value.len() + 1];
        match piece {
            Piece::Char(c) => {
                for j in 0..value.len() {
                    next[j + 1] = row[j] && value[j] == *c;
                }
            }
            Piece::Segment => {
                next[0] = row[0];
                for j in 0..value.len() {
                    next[j + 1] = row[j + 1] || (next[j] && !is_separator(value[j]));
                }
            }
            Piece::Any => {
                next[0] = row[0];
                for j in 0..value.len() {
                    next[j + 1] = row[j + 1] || next[j];
                }
            }
        }
        row = next;
    }
    row[value.len()]
}

/// A claim a condition reads: a top-level claim by name, or any claim by RFC 6901 JSON
/// Pointer (`/kubernetes.io/serviceaccount/name`: Kubernetes' claim names hold dots, so a
/// dotted path would be ambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath(String);

impl ClaimPath {
    /// A claim name, or a JSON Pointer starting with `/`.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if text.is_empty() || text.len() > 256 || text.chars().any(char::is_control) {
            return Err(RuleError(format!("claim {text:?}: 1 to 256 printable characters")));
        }
        Ok(Self(text.to_owned()))
    }

    #[allow(missing_docs)]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn get<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        if self.0.starts_with('/') { claims.pointer(&self.0) } else { claims.get(&self.0) }
    }
}

/// One condition: the claim at `claim` matches `pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    #[allow(missing_docs)]
    pub claim: ClaimPath,
    #[allow(missing_docs)]
    pub pattern: Pattern,
}

impl Condition {
    /// From the CLI form `CLAIM=PATTERN` (the first `=` splits).
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let (claim, pattern) =
            text.split_once('=').ok_or_else(|| RuleError(format!("{text:?}: expected CLAIM=PATTERN")))?;
        Ok(Self { claim: ClaimPath::parse(claim)?, pattern: Pattern::parse(pattern)? })
    }

    /// Whether it holds for `claims`; otherwise why not.
    fn check(&self, claims: &Value) -> Result<(), Miss> {
        let Some(value) = self.claim.get(claims) else {
            return Err(Miss::Absent(self.claim.0.clone()));
        };
        let holds = |v: &Value| match v {
            Value::String(s) => self.pattern.matches(s),
            Value::Number(_) | Value::Bool(_) => self.pattern.matches(&v.to_string()),
            _ => false,
        };
        let ok = match value {
            Value::Array(items) => items.iter().any(holds),
            v => holds(v),
        };
        if ok {
            Ok(())
        } else {
            Err(Miss::Mismatch { claim: self.claim.0.clone(), pattern: self.pattern.text.clone() })
        }
    }
}

/// Why a rule did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The token has no such claim.
    Absent(String),
    /// The claim's value does not match.
    Mismatch {
        #[allow(missing_docs)]
        claim: String,
        #[allow(missing_docs)]
        pattern: String,
    },
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent(claim) => write!(f, "the token has no claim {claim}"),
            Self::Mismatch { claim, pattern } => write!(f, "{claim} does not match {pattern}"),
        }
    }
}

/// A rule: all its conditions hold → the workload acts as `client`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id (shown by `trust rule list`, recorded on tokens).
    pub id: i64,
    /// The Tessera client whose scopes and permissions the workload gets.
    pub client: String,
    /// All must hold; at least one.
    pub conditions: Vec<Condition>,
}

impl Rule {
    fn check(&self, claims: &Value) -> Result<(), Miss> {
        self.conditions.iter().try_for_each(|c| c.check(claims))
    }
}

/// A trust's rules, in evaluation order, indexed.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// (claim, exact value) → positions of the rules indexed under it, ascending.
    index: HashMap<(ClaimPath, String), Vec<usize>>,
    /// The claims some rule is indexed under.
    indexed_claims: Vec<ClaimPath>,
    /// Positions of rules without an exact condition, ascending.
    unindexed: Vec<usize>,
}

/// What `trust test` shows: the rule that matched, and why each rule before it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The first rule whose conditions all hold.
    pub matched: Option<Rule>,
    /// Rules evaluated before it (or all, on no match), with the first condition that failed.
    pub misses: Vec<(i64, Miss)>,
}

impl RuleSet {
    /// Rules in evaluation order (ascending id: the order they were added).
    pub fn new(mut rules: Vec<Rule>) -> Self {
        rules.sort_by_key(|r| r.id);
        let mut set = Self { rules, ..Self::default() };
        for (pos, rule) in set.rules.iter().enumerate() {
            match rule.conditions.iter().find_map(|c| c.pattern.exact().map(|v| (c.claim.clone(), v.to_owned()))) {
                Some(key) => {
                    if !set.indexed_claims.contains(&key.0) {
                        set.indexed_claims.push(key.0.clone());
                    }
                    set.index.entry(key).or_default().push(pos);
                }
                None => set.unindexed.push(pos),
            }
        }
        set
    }

    #[allow(missing_docs)]
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    #[allow(missing_docs)]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    #[allow(missing_docs)]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Positions of the rules that can match `claims`, ascending: those indexed under a value
    /// the token carries, and those not indexed.
    fn candidates(&self, claims: &Value) -> Vec<usize> {
        let mut out = self.unindexed.clone();
        for claim in &self.indexed_claims {
            let mut look = |v: &Value| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => v.to_string(),
                    _ => return,
                };
                if let Some(hits) = self.index.get(&(claim.clone(), text)) {
                    out.extend_from_slice(hits);
                }
            };
            match claim.get(claims) {
                Some(Value::Array(items)) => items.iter().for_each(&mut look),
                Some(v) => look(v),
                None => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The first rule, in order, whose conditions all hold for `claims`.
    pub fn first_match(&self, claims: &Value) -> Option<&Rule> {
        self.candidates(claims).into_iter().map(|p| &self.rules[p]).find(|r| r.check(claims).is_ok())
    }

    /// Every rule in order up to the match, with why each one before it missed: `trust test`.
    /// Scans all rules (an operator's question, not a request's).
    pub fn explain(&self, claims: &Value) -> Explanation {
        let mut misses = Vec::new();
        for rule in &self.rules {
            match rule.check(claims) {
                Ok(()) => return Explanation { matched: Some(rule.clone()), misses },
                Err(why) => misses.push((rule.id, why)),
            }
        }
        Explanation { matched: None, misses }
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
