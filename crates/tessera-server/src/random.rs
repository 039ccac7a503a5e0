//! Randomness is passed in (as time is, in [`crate::clock`]): the [`Random`] source and the
//! base64url tokens drawn from it for secrets, reference tokens and `jti`s.

use aws_lc_rs::rand::SecureRandom;

/// A source of cryptographic randomness.
pub trait Random: Send + Sync + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (through aws-lc).
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        self.0.fill(buf).expect("the OS random number generator failed");
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(rng: &dyn Random, n: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
