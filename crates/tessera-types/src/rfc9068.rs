//! RFC 9068 JWT profile for OAuth 2.0 access tokens.

use serde::{Deserialize, Serialize};

use crate::{ClientId, Resource, UnixTime};

/// §2.1: the JOSE header. `typ` is `at+jwt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// Signing algorithm.
    pub alg: String,
    /// Always `at+jwt`.
    pub typ: String,
    /// Key identifier: the RFC 7638 thumbprint of the signing key.
    pub kid: String,
}

/// The media type of RFC 9068 access tokens, as the `typ` header carries it (§2.1).
pub const TYP: &str = "at+jwt";

/// `aud`: one string when there is one audience, else an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(Resource),
    /// Several audiences.
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
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The client itself (§2.2: with no resource owner, `sub` is the client).
    pub sub: String,
    /// Resources the token is meant for.
    pub aud: Audience,
    /// Expiry.
    pub exp: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Unique token identifier.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// Granted scopes, space-delimited (§2.2.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}
