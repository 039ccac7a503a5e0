//! Access tokens: `issue` picks the format a client is registered for, one module per
//! format does the rest; [`lookup`] finds a presented token again.

pub mod dpop;
pub mod jwt;
pub mod lookup;
pub mod reference;

use tessera_store::ClientRecord;
use tessera_types::TokenFormat;

use crate::error::OAuthError;
use crate::grant::Grant;
use crate::registry::Registry;
use crate::state::Inner;

/// Issues an access token for `grant` to `client`, in the client's format: a signed JWT
/// (RFC 9068) or a reference token (stored, for RFC 7662 introspection).
pub(crate) async fn issue(
    s: &Inner,
    registry: &Registry,
    client: &ClientRecord,
    grant: &Grant,
) -> Result<String, OAuthError> {
    let now = s.clock.now();
    // An exchanged token (RFC 8693) is a JWT whatever the client's format: its subject and
    // actor are claims a reference token's record does not keep.
    let format = if grant.subject.is_some() { TokenFormat::Jwt } else { client.token_format };
    match format {
        TokenFormat::Jwt => jwt::issue(&s.issuer, registry, &s.signing_algs, client, grant, now, &*s.rng),
        TokenFormat::Reference => reference::issue(&*s.stores.issue, &s.issuance, client, grant, now, &*s.rng).await,
    }
}
