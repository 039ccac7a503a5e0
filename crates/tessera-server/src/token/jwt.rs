//! RFC 9068 JWT access tokens: header `typ: at+jwt` and `kid`, claims `iss sub aud exp iat
//! nbf jti client_id scope`, compact JWS serialisation (RFC 7515 §7.1).

use tessera_types::rfc9068::{Audience, Claims};
use tessera_types::{ClientId, Jti, UnixTime};

use crate::clock::{Random, random_token};
use crate::grant::client_credentials::Grant;
use crate::keys::{KeyError, SigningKey};

/// Claims for a client credentials token. §2.2: with no resource owner, `sub` is the client.
pub fn claims(
    issuer: &str,
    client_id: &ClientId,
    grant: &Grant,
    now: UnixTime,
    lifetime: i64,
    rng: &dyn Random,
) -> Claims {
    Claims {
        iss: issuer.to_owned(),
        sub: client_id.as_str().to_owned(),
        aud: Audience::from_list(grant.audiences.clone()),
        exp: now.plus(lifetime),
        iat: now,
        nbf: now,
        jti: Jti::new(random_token(rng, 16)).expect("22 base64url characters are a valid jti"),
        client_id: client_id.clone(),
        scope: (!grant.scopes.is_empty()).then(|| grant.scopes.to_string()),
    }
}

/// Signs `claims` with `key` and returns the compact serialisation.
pub fn sign(key: &SigningKey, claims: &Claims) -> Result<String, KeyError> {
    Ok(key.sign_access_token(claims)?)
}
