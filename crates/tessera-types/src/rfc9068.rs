//! RFC 9068 JWT profile for OAuth 2.0 access tokens: the header and claims Tessera signs, and
//! the typed claims a verifier reads back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rfc8705::Confirmation;
use crate::{ClientId, InvalidValue, Issuer, Jti, Kid, Resource, ScopeName, ScopeSet, SigningAlg, UnixTime};

/// §2.1: the JOSE header. `typ` is `at+jwt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Header {
    pub alg: SigningAlg,
    /// Always `at+jwt`.
    pub typ: String,
    /// Key identifier: the RFC 7638 thumbprint of the signing key.
    pub kid: Kid,
}

/// The media type of RFC 9068 access tokens, as the `typ` header carries it (§2.1).
pub const TYP: &str = "at+jwt";

/// `aud`: one string when there is one audience, else an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Audience {
    One(Resource),
    Many(Vec<Resource>),
}

impl Audience {
    /// Builds the claim from a non-empty list.
    pub fn from_list(mut list: Vec<Resource>) -> Self {
        if list.len() == 1 { Self::One(list.remove(0)) } else { Self::Many(list) }
    }
}

/// §2.2 claims of an access token issued by the client credentials grant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Claims {
    pub iss: Issuer,
    /// The client itself (§2.2: with no resource owner, `sub` is the client).
    pub sub: ClientId,
    /// Resources the token is meant for.
    pub aud: Audience,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub nbf: UnixTime,
    pub jti: Jti,
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// Granted scopes, space-delimited (§2.2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// What the token is bound to (RFC 8705 §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The workload the client was identified by, when a trust's rule named it (issue 15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// RFC 8693 §4.1: who acts for the subject (a token obtained by token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<crate::rfc8693::Actor>,
}

/// Tessera's `workload` claim: which external identity became the client, and by which rule.
/// Not RFC 8693's `act`: that names an actor to whom a subject delegated, while here the
/// workload *is* the client (no one delegated anything); an API that wants to know the pod,
/// the repository or the SPIFFE ID behind a client reads it here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// The external issuer (the trust's).
    pub iss: String,
    /// The workload's `sub` there.
    pub sub: String,
    /// The trust's name.
    pub trust: String,
    /// The id of the rule that matched.
    pub rule: i64,
}

/// The claims of a verified access token, typed once as they are read (by `tessera-jose`),
/// so that no caller reads a claim back by name.
///
/// RFC 9068 §2.2 makes `iss exp aud sub client_id iat jti` REQUIRED, but the guard also
/// accepts tokens of issuers that leave some out (and Azure AD / Okta write `scp`), so only
/// what verification enforces is required here: `iss` and `exp` (RFC 9068 §4), `aud` a string
/// or an array, `nbf` an integer when present (RFC 7519 §4.1.5). The others are kept when
/// well-formed and otherwise left out: Tessera's own tokens always carry them, and the
/// server treats a token without them as not its own.
///
/// An RFC 7662 §2.2 introspection answer has the same members and is read by the same rules
/// ([`AccessTokenClaims::from_introspection`]), except that `iss` and `nbf` are optional
/// there.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenClaims {
    /// `iss`, exactly as signed; always present in a JWT.
    pub iss: Option<String>,
    /// `aud` as a list (RFC 7519 §4.1.3: one string or an array; non-strings are dropped).
    pub aud: Vec<String>,
    /// `exp` (RFC 7519 §4.1.4), required: a token without an end is refused.
    pub exp: UnixTime,
    /// `nbf`, when present.
    pub nbf: Option<UnixTime>,
    /// `iat`, when present and an integer.
    pub iat: Option<UnixTime>,
    /// `sub`, when present and a string.
    pub sub: Option<String>,
    /// `jti`, when present and a valid [`Jti`].
    pub jti: Option<Jti>,
    /// `client_id` (RFC 9068 §2.2), when present and a valid [`ClientId`].
    pub client_id: Option<ClientId>,
    /// `scope` (RFC 9068 §2.2.3), read leniently (see [`ScopeSet::parse_lenient`]).
    pub scope: Option<ScopeSet>,
    /// `scp`, as some issuers write the scopes: a space-delimited string or an array.
    pub scp: ScopeSet,
    /// `cnf` (RFC 7800 §3.1): what the token is bound to (RFC 8705 §3.1 a certificate); a
    /// malformed one makes the whole token malformed, never an unbound one.
    pub cnf: Option<Confirmation>,
    /// Every other claim, untouched, for applications that use claims of their own.
    pub other: Map<String, Value>,
}

/// The payload as parsed, before the types are checked: serde names each claim once here.
#[derive(Deserialize)]
struct RawClaims {
    /// RFC 7662 §2.2; read only from introspection answers.
    #[serde(default, deserialize_with = "present")]
    active: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iss: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iat: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    sub: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    jti: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    client_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    scope: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    scp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    cnf: Option<Value>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// `Some` for a member that is present, even `null`: a `null` `nbf` is malformed, not absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl AccessTokenClaims {
    /// Parses a JWT payload. The error's `what` names the claim at fault, or is `payload`
    /// when the payload is not a JSON object.
    pub fn from_json(payload: &[u8]) -> Result<Self, InvalidValue> {
        let raw: RawClaims = serde_json::from_slice(payload).map_err(|_| not_an_object())?;
        let claims = Self::typed(raw, true)?;
        if claims.iss.is_none() {
            return Err(InvalidValue { what: "iss", why: MALFORMED });
        }
        Ok(claims)
    }

    /// Reads an RFC 7662 §2.2 introspection answer: `Ok(None)` unless `active` is JSON
    /// `true` ("a boolean indicator") and `exp` and `aud` are well-formed, since a token that
    /// cannot be checked is as good as inactive. `Err` only when the answer is not a JSON
    /// object at all.
    pub fn from_introspection(answer: &[u8]) -> Result<Option<Self>, InvalidValue> {
        let raw: RawClaims = serde_json::from_slice(answer).map_err(|_| not_an_object())?;
        if raw.active != Some(Value::Bool(true)) {
            return Ok(None);
        }
        Ok(Self::typed(raw, false).ok())
    }

    /// `jwt`: the claims verification enforces must be well-formed (RFC 7519 §4.1).
    fn typed(raw: RawClaims, jwt: bool) -> Result<Self, InvalidValue> {
        let bad = |what| InvalidValue { what, why: MALFORMED };
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let time = |v: &Value| v.as_i64().map(UnixTime);
        let aud = match raw.aud {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a.into_iter().filter_map(|v| text(Some(v))).collect(),
            None => vec![],
            Some(_) => return Err(bad("aud")),
        };
        let scp = match raw.scp {
            Some(Value::String(s)) => ScopeSet::parse_lenient(&s),
            Some(Value::Array(a)) => {
                a.iter().filter_map(Value::as_str).filter_map(|s| ScopeName::new(s).ok()).collect()
            }
            _ => ScopeSet::default(),
        };
        let nbf = match raw.nbf.as_ref().map(time) {
            Some(None) if jwt => return Err(bad("nbf")),
            other => other.flatten(),
        };
        Ok(Self {
            iss: text(raw.iss),
            aud,
            exp: raw.exp.as_ref().and_then(time).ok_or(bad("exp"))?,
            nbf,
            iat: raw.iat.as_ref().and_then(time),
            sub: text(raw.sub),
            jti: text(raw.jti).and_then(|j| Jti::new(j).ok()),
            client_id: text(raw.client_id).and_then(|c| ClientId::new(c).ok()),
            scope: text(raw.scope).map(|s| ScopeSet::parse_lenient(&s)),
            scp,
            cnf: raw.cnf.map(serde_json::from_value).transpose().map_err(|_| bad("cnf"))?,
            other: raw.other,
        })
    }

    /// Every scope granted, from `scope` and `scp` alike.
    pub fn scopes(&self) -> ScopeSet {
        let mut all = self.scope.clone().unwrap_or_default();
        all.extend(self.scp.iter().cloned());
        all
    }
}

const MALFORMED: &str = "missing or of the wrong type";

fn not_an_object() -> InvalidValue {
    InvalidValue { what: "payload", why: "not a JSON object" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9068_2_2_claims_are_typed_once() {
        let c = AccessTokenClaims::from_json(
            br#"{"iss":"https://as","aud":["a",1,"b"],"exp":20,"iat":10,"jti":"j","client_id":"CC","scope":"x y","scp":["z"],"tid":"t"}"#,
        )
        .unwrap();
        assert_eq!(c.aud, vec!["a", "b"]);
        assert_eq!((c.exp, c.iat, c.nbf), (UnixTime(20), Some(UnixTime(10)), None));
        assert_eq!(c.jti.as_ref().unwrap().as_str(), "j");
        assert_eq!(c.client_id.as_ref().unwrap().as_str(), "CC");
        assert_eq!(c.scopes_string(), "x y z");
        assert_eq!(c.other.get("tid"), Some(&Value::from("t")));
    }

    #[test]
    fn rfc7519_enforced_claims_must_have_their_types() {
        let what = |j: &str| AccessTokenClaims::from_json(j.as_bytes()).unwrap_err().what;
        assert_eq!(what(r#"{"exp":1}"#), "iss");
        assert_eq!(what(r#"{"iss":"i"}"#), "exp");
        assert_eq!(what(r#"{"iss":"i","exp":1.5}"#), "exp");
        assert_eq!(what(r#"{"iss":"i","exp":1,"nbf":null}"#), "nbf");
        assert_eq!(what(r#"{"iss":"i","exp":1,"aud":3}"#), "aud");
        assert_eq!(what("[1]"), "payload");
        assert_eq!(what(r#"{"iss":5,"exp":1}"#), "iss");
        // Claims the verifier does not enforce are dropped when malformed, not fatal.
        let c = AccessTokenClaims::from_json(br#"{"iss":"i","exp":1,"iat":"x","jti":7,"client_id":""}"#).unwrap();
        assert_eq!((c.iat, c.jti, c.client_id), (None, None, None));
    }

    #[test]
    fn rfc7662_2_2_only_active_true_with_exp_and_aud_is_read() {
        let read = |j: &str| AccessTokenClaims::from_introspection(j.as_bytes());
        assert!(read(r#"{"active":true,"exp":5,"aud":"a","nbf":"x"}"#).unwrap().is_some());
        assert!(read(r#"{"active":"true","exp":5}"#).unwrap().is_none());
        assert!(read(r#"{"active":true}"#).unwrap().is_none());
        assert!(read(r#"{"active":true,"exp":5,"aud":{}}"#).unwrap().is_none());
        assert!(read("[]").is_err());
    }

    impl AccessTokenClaims {
        fn scopes_string(&self) -> String {
            self.scopes().to_string()
        }
    }
}
