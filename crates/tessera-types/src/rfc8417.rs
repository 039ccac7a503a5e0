//! Security Event Tokens (RFC 8417) for Tessera's revocation feed, and their RFC 8936 poll
//! delivery: what the server signs for each revocation, and the request and answer of the
//! poll endpoint. One event per SET; the SET's `jti` is the event's position in the feed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ClientId, InvalidValue, Jti, Kid, UnixTime};

/// RFC 8417 §2.3: the JOSE `typ` of a SET.
pub const TYP: &str = "secevent+jwt";

/// Event type URIs (RFC 8417 §2.2 `events` member names).
pub mod event_type {
    /// One access token (a JWT by `jti`, or a reference token by `jti` and hash).
    pub const TOKEN_REVOKED: &str = "urn:tessera:secevent:token-revoked";
    /// Every token of a client issued before `not_before`.
    pub const CLIENT_TOKENS_REVOKED: &str = "urn:tessera:secevent:client-tokens-revoked";
    /// A client disabled or removed: all its tokens, until it is enabled again.
    pub const CLIENT_DISABLED: &str = "urn:tessera:secevent:client-disabled";
    /// A disabled client enabled again: its tokens count again (unless revoked otherwise).
    pub const CLIENT_ENABLED: &str = "urn:tessera:secevent:client-enabled";
    /// A signing key removed: every token it signed.
    pub const KEY_REMOVED: &str = "urn:tessera:secevent:key-removed";
}

/// A position in the feed: the SET's `jti`, increasing with every event recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventSeq(pub i64);

impl EventSeq {
    /// Parses a SET `jti` / an acknowledgement.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        s.parse::<i64>().ok().filter(|n| *n > 0).map(Self).ok_or(InvalidValue {
            what: "security event jti",
            why: "expected the decimal position of an event in the feed",
        })
    }
}

impl fmt::Display for EventSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What was revoked. Each variant is one event type, its payload the event's members.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // the members are named as on the wire, described per variant
pub enum RevocationEvent {
    /// One token: its `jti`, when it expires anyway, whose it is; for a reference token also
    /// the base64url SHA-256 of the token (what an introspection cache is keyed by).
    TokenRevoked { jti: Jti, exp: UnixTime, client_id: ClientId, token_hash: Option<String> },
    /// Tokens of `client_id` issued (`iat`) before `not_before`.
    ClientTokensRevoked { client_id: ClientId, not_before: UnixTime },
    /// All tokens of `client_id`, while it stays disabled.
    ClientDisabled { client_id: ClientId },
    /// `client_id` enabled again.
    ClientEnabled { client_id: ClientId },
    /// Tokens signed by `kid`.
    KeyRemoved { kid: Kid },
}

#[derive(Serialize, Deserialize)]
struct TokenPayload {
    jti: Jti,
    exp: UnixTime,
    client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_hash: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ClientPayload {
    client_id: ClientId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_before: Option<UnixTime>,
}

#[derive(Serialize, Deserialize)]
struct KeyPayload {
    kid: Kid,
}

impl RevocationEvent {
    /// Its event type URI.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::TokenRevoked { .. } => event_type::TOKEN_REVOKED,
            Self::ClientTokensRevoked { .. } => event_type::CLIENT_TOKENS_REVOKED,
            Self::ClientDisabled { .. } => event_type::CLIENT_DISABLED,
            Self::ClientEnabled { .. } => event_type::CLIENT_ENABLED,
            Self::KeyRemoved { .. } => event_type::KEY_REMOVED,
        }
    }

    /// Its payload, the value of its type in `events`.
    pub fn payload(&self) -> Value {
        let v = match self {
            Self::TokenRevoked { jti, exp, client_id, token_hash } => serde_json::to_value(TokenPayload {
                jti: jti.clone(),
                exp: *exp,
                client_id: client_id.clone(),
                token_hash: token_hash.clone(),
            }),
            Self::ClientTokensRevoked { client_id, not_before } => {
                serde_json::to_value(ClientPayload { client_id: client_id.clone(), not_before: Some(*not_before) })
            }
            Self::ClientDisabled { client_id } | Self::ClientEnabled { client_id } => {
                serde_json::to_value(ClientPayload { client_id: client_id.clone(), not_before: None })
            }
            Self::KeyRemoved { kid } => serde_json::to_value(KeyPayload { kid: kid.clone() }),
        };
        v.expect("event payloads serialise")
    }

    /// Reads one event from its type and payload; `Ok(None)` for a type this crate does not
    /// know (RFC 8417 §2.2: a receiver ignores event types it does not understand).
    pub fn from_parts(event_type: &str, payload: Value) -> Result<Option<Self>, InvalidValue> {
        let bad = |_| InvalidValue { what: "security event", why: "payload does not match its event type" };
        Ok(Some(match event_type {
            event_type::TOKEN_REVOKED => {
                let p: TokenPayload = serde_json::from_value(payload).map_err(bad)?;
                Self::TokenRevoked { jti: p.jti, exp: p.exp, client_id: p.client_id, token_hash: p.token_hash }
            }
            event_type::CLIENT_TOKENS_REVOKED => {
                let p: ClientPayload = serde_json::from_value(payload).map_err(bad)?;
                let not_before = p.not_before.ok_or(InvalidValue { what: "not_before", why: "required" })?;
                Self::ClientTokensRevoked { client_id: p.client_id, not_before }
            }
            event_type::CLIENT_DISABLED => Self::ClientDisabled {
                client_id: serde_json::from_value::<ClientPayload>(payload).map_err(bad)?.client_id,
            },
            event_type::CLIENT_ENABLED => Self::ClientEnabled {
                client_id: serde_json::from_value::<ClientPayload>(payload).map_err(bad)?.client_id,
            },
            event_type::KEY_REMOVED => {
                Self::KeyRemoved { kid: serde_json::from_value::<KeyPayload>(payload).map_err(bad)?.kid }
            }
            _ => return Ok(None),
        }))
    }
}

/// The claims of a SET (RFC 8417 §2.2) as Tessera writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetClaims {
    /// The issuer (the authorization server).
    pub iss: String,
    /// When the SET was signed.
    pub iat: UnixTime,
    /// The event's position in the feed.
    pub jti: String,
    /// The receiver (the API's client id).
    pub aud: String,
    /// When the revocation was recorded (RFC 8417 §2.2 `toe`, time of event).
    pub toe: UnixTime,
    /// Exactly one event: type URI → payload.
    pub events: Map<String, Value>,
}

impl SetClaims {
    /// The one event it carries; `Ok(None)` when its type is unknown here.
    pub fn event(&self) -> Result<Option<RevocationEvent>, InvalidValue> {
        let mut events = self.events.iter();
        let (Some((ty, payload)), None) = (events.next(), events.next()) else {
            return Err(InvalidValue { what: "events", why: "expected exactly one event" });
        };
        RevocationEvent::from_parts(ty, payload.clone())
    }

    /// Its position in the feed.
    pub fn seq(&self) -> Result<EventSeq, InvalidValue> {
        EventSeq::parse(&self.jti)
    }
}

/// RFC 8936 §2.4: a poll request. `ack` names SETs received; Tessera reads the highest as the
/// receiver's position and answers what follows it (see the server's README).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// SET `jti`s received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack: Vec<String>,
    /// Most SETs in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u32>,
    /// Answer at once even when there is nothing new (else the server long-polls).
    #[serde(default)]
    pub return_immediately: bool,
}

/// RFC 8936 §2.5: a poll answer: SETs by `jti`, and whether more are waiting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// SET `jti` → compact SET.
    pub sets: BTreeMap<String, String>,
    /// RFC 8936 §2.5: more SETs are waiting; poll again at once.
    #[serde(default)]
    pub more_available: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_through_its_type_and_payload() {
        let client_id = ClientId::new("svc").unwrap();
        let events = [
            RevocationEvent::TokenRevoked {
                jti: Jti::new("j1").unwrap(),
                exp: UnixTime(10),
                client_id: client_id.clone(),
                token_hash: Some("h".into()),
            },
            RevocationEvent::TokenRevoked {
                jti: Jti::new("j2").unwrap(),
                exp: UnixTime(10),
                client_id: client_id.clone(),
                token_hash: None,
            },
            RevocationEvent::ClientTokensRevoked { client_id: client_id.clone(), not_before: UnixTime(5) },
            RevocationEvent::ClientDisabled { client_id: client_id.clone() },
            RevocationEvent::ClientEnabled { client_id },
            RevocationEvent::KeyRemoved { kid: Kid::new("k1").unwrap() },
        ];
        for e in events {
            assert_eq!(RevocationEvent::from_parts(e.event_type(), e.payload()).unwrap(), Some(e.clone()));
        }
        assert_eq!(RevocationEvent::from_parts("urn:example:other", Value::Null).unwrap(), None);
        assert!(RevocationEvent::from_parts(event_type::KEY_REMOVED, serde_json::json!({"kid": 5})).is_err());
        assert!(
            RevocationEvent::from_parts(event_type::CLIENT_TOKENS_REVOKED, serde_json::json!({"client_id": "a"}))
                .is_err()
        );
    }

    #[test]
    fn rfc8936_poll_messages_use_the_rfc_member_names() {
        let r = PollRequest { ack: vec!["3".into()], max_events: Some(10), return_immediately: true };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"ack": ["3"], "maxEvents": 10, "returnImmediately": true})
        );
        let a: PollResponse = serde_json::from_str(r#"{"sets": {"4": "a.b.c"}, "moreAvailable": true}"#).unwrap();
        assert_eq!(a.sets["4"], "a.b.c");
        assert!(a.more_available);
        assert_eq!(EventSeq::parse("42").unwrap(), EventSeq(42));
        assert!(EventSeq::parse("0").is_err() && EventSeq::parse("x").is_err());
    }
}
