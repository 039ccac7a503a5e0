//! Opaque reference tokens (RFC 7662's use case), 43 base64url characters in two parts, as
//! split tokens go: a handle the store finds the row by (the first 22 characters: issuance
//! second, a sequence number, 66 random bits) and the rest, 124 random bits the store never
//! sees. The store keeps the handle and the SHA-256 of the whole token and matches both, so a
//! leaked database holds no usable token; 190 random bits need no salt or slow hash
//! (RFC 6749 §10.10 asks for at most 2^-128 to guess one). The whole is still the canonical
//! base64url of 32 bytes that guards check a reference token's shape against.
//!
//! The handle starts time-ordered so that new rows land at the end of the store's index
//! (migration 0017): keyed by a random value, every insert wrote a random page. What it
//! tells a holder of the token: the second it was issued (as `iat` does) and its order among
//! the instance's tokens.

use aws_lc_rs::digest;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_store::{ClientRecord, TokenRecord};
use tessera_types::{ClientId, ErrorCode, Jti, UnixTime};

use crate::error::OAuthError;
use crate::grant::Grant;
use crate::random::{Random, random_token};
use crate::storage::StoreFuture;
use crate::throttle::IssuanceLimiter;

/// Where issued reference tokens are kept.
pub trait TokenIssueStore: Send + Sync {
    /// Stores `record`, resolving once it is durable.
    fn insert_reference(&self, record: TokenRecord) -> StoreFuture<'_, ()>;
}

/// Issues a reference token for `client`, within its cap on live reference tokens.
pub(crate) async fn issue(
    store: &dyn TokenIssueStore,
    issuance: &IssuanceLimiter,
    client: &ClientRecord,
    grant: &Grant,
    now: UnixTime,
    rng: &dyn Random,
) -> Result<String, OAuthError> {
    if !issuance.take_live(client) {
        tracing::warn!(client_id = %client.client_id, "live reference token cap reached");
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "this client holds as many live reference tokens as it may; reuse them until they expire",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_retry_after(60)
        .limited_by(crate::metrics::Limited::LiveTokens));
    }
    let token = new_token(now, next_sequence(rng), rng);
    let record = record(&token, &client.client_id, grant, now, client.access_token_lifetime, rng);
    let jti = record.jti.clone();
    // Committed (group commit) before the response is sent: a token the client holds is
    // never lost to a crash.
    if let Err(e) = store.insert_reference(record).await {
        issuance.untake_live(client);
        return Err(OAuthError::unavailable(e));
    }
    issuance.committed_live(client);
    tracing::debug!(client_id = %client.client_id, %jti, scope = %grant.scopes, "issued reference token");
    Ok(token)
}

/// Leading characters of a token that are its handle.
pub const HANDLE_CHARS: usize = 22;

/// The 64 base64url characters in ASCII order: numbers written with them compare as strings
/// as they do as numbers, so the handle's time-ordered start stays ordered in the index.
const ORDERED_DIGITS: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A new token: the issuance second (6 ordered digits, 36 bits), `sequence` (5 digits, 30
/// bits), then the last 32 characters of 32 random bytes in base64url — whose last character
/// carries 2 zero bits, so the token stays the canonical encoding of 32 bytes, as older
/// guards (`OpaqueTokens::TesseraReference`) require.
pub fn new_token(now: UnixTime, sequence: u32, rng: &dyn Random) -> String {
    const ORDERED_CHARS: usize = 11;
    let random = random_token(rng, 32);
    let mut token = String::with_capacity(random.len());
    push_ordered(&mut token, now.0.clamp(0, (1 << 36) - 1) as u64, 6);
    push_ordered(&mut token, u64::from(sequence) & ((1 << 30) - 1), 5);
    token.push_str(&random[ORDERED_CHARS..]);
    token
}

/// `value`'s low `6 * digits` bits in [`ORDERED_DIGITS`], most significant first.
fn push_ordered(out: &mut String, value: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(char::from(ORDERED_DIGITS[((value >> (6 * i)) & 63) as usize]));
    }
}

/// The next number of this process's sequence, from a random start (so it says nothing of
/// how many tokens the instance issued since it started).
fn next_sequence(rng: &dyn Random) -> u32 {
    static START: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = *START.get_or_init(|| {
        let mut b = [0; 4];
        rng.fill(&mut b);
        u32::from_le_bytes(b)
    });
    start.wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// SHA-256 of a token, base64url: what the store matches besides the handle.
pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// How the store finds a presented reference token (see the module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceKey {
    /// The token's first [`HANDLE_CHARS`] characters.
    pub handle: String,
    /// [`hash`] of the whole token.
    pub hash: String,
}

impl ReferenceKey {
    /// The key of `token`, which has the shape [`looks_like_reference`] checks.
    pub fn of(token: &str) -> Self {
        Self { handle: token.get(..HANDLE_CHARS).unwrap_or(token).to_owned(), hash: hash(token) }
    }
}

/// Whether a presented token has the shape of a compact JWS (three dot-separated parts) rather
/// than of a reference token (base64url, no dots).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Whether a presented token has the shape of a Tessera reference token: 32 random bytes,
/// base64url without padding (43 characters). Anything else cannot be one, and is refused
/// without a store read.
pub fn looks_like_reference(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The record stored for `token`.
pub fn record(
    token: &str,
    client_id: &ClientId,
    grant: &Grant,
    now: UnixTime,
    lifetime: i64,
    rng: &dyn Random,
) -> TokenRecord {
    let key = ReferenceKey::of(token);
    TokenRecord {
        handle: key.handle,
        hash: key.hash,
        jti: Jti::new(random_token(rng, 16)).expect("22 base64url characters are a valid jti"),
        client_id: client_id.clone(),
        scope: (!grant.scopes.is_empty()).then(|| grant.scopes.clone()),
        audiences: grant.audiences.clone(),
        iat: now,
        exp: now.plus(lifetime),
        revoked: false,
        cnf: grant.cnf.clone(),
        workload: grant.workload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::random::SystemRandom;

    fn ordered(value: u64, digits: u32) -> String {
        let mut s = String::new();
        push_ordered(&mut s, value, digits);
        s
    }

    proptest! {
        /// The handle's numbers compare as strings (the index's order) as they do as numbers.
        #[test]
        fn ordered_digits_keep_the_order_of_numbers(a in 0u64..1 << 36, b in 0u64..1 << 36) {
            prop_assert_eq!(ordered(a, 6).cmp(&ordered(b, 6)), a.cmp(&b));
        }
    }

    #[test]
    fn new_tokens_are_reference_shaped_and_ordered_by_second_then_sequence() {
        let rng = SystemRandom::default();
        let t = |second, sequence| new_token(UnixTime(second), sequence, &rng);
        for _ in 0..64 {
            let a = t(1_790_000_000, 7);
            assert!(looks_like_reference(&a) && !looks_like_jwt(&a), "{a}");
            // What a guard checks (tessera-guard's shape.rs): canonical base64url of 32 bytes.
            assert_eq!(URL_SAFE_NO_PAD.decode(&a).map(|b| b.len()), Ok(32), "{a}");
        }
        let a = t(1_790_000_000, 7);
        assert!(a < t(1_790_000_000, 8) && t(1_790_000_000, 8) < t(1_790_000_001, 0));
        assert!(ReferenceKey::of(&a).handle < ReferenceKey::of(&t(1_790_000_000, 8)).handle);
        // The same second and sequence: told apart by the random part, in the handle too.
        let (b, c) = (t(1_790_000_000, 9), t(1_790_000_000, 9));
        assert_ne!(ReferenceKey::of(&b).handle, ReferenceKey::of(&c).handle);
        assert_eq!(ReferenceKey::of(&b).handle.len(), HANDLE_CHARS);
        assert_eq!(ReferenceKey::of(&b).hash, hash(&b));
    }
}
