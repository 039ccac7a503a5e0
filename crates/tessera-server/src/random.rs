//! Randomness is passed in (as time is, in [`crate::clock`]): the [`Random`] source and the
//! base64url tokens drawn from it for secrets, reference tokens and `jti`s.

use aws_lc_rs::rand::SecureRandom;

/// A source of cryptographic randomness.
pub trait Random: Send + Sync + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (through aws-lc), drawn [`POOL_BYTES`] at a time by each
/// thread. aws-lc's generator re-keys itself and reads RDRAND on every call, whatever its size:
/// one call per 32-byte token was ~4 % of a reference-token request's CPU (issue 17, `perf`),
/// one call per 32 tokens is not. Bytes are handed out once and wiped from the pool as they go;
/// a forked child discards what its parent drew (the pool remembers the process id).
#[derive(Debug, Default)]
pub struct SystemRandom(aws_lc_rs::rand::SystemRandom);

/// Bytes one aws-lc call draws into a thread's pool.
const POOL_BYTES: usize = 1024;

struct Pool {
    bytes: [u8; POOL_BYTES],
    /// Start of what has not been handed out.
    next: usize,
    pid: u32,
}

thread_local! {
    static POOL: std::cell::RefCell<Pool> =
        const { std::cell::RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES, pid: 0 }) };
}

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        if buf.len() > POOL_BYTES / 4 {
            return self.0.fill(buf).expect("the OS random number generator failed");
        }
        POOL.with_borrow_mut(|pool| {
            let pid = std::process::id();
            if pool.pid != pid || POOL_BYTES - pool.next < buf.len() {
                self.0.fill(&mut pool.bytes).expect("the OS random number generator failed");
                (pool.next, pool.pid) = (0, pid);
            }
            let taken = &mut pool.bytes[pool.next..pool.next + buf.len()];
            buf.copy_from_slice(taken);
            taken.fill(0);
            pool.next += buf.len();
        })
    }
}

/// `n` random bytes, base64url without padding.
pub fn random_token(rng: &dyn Random, n: usize) -> String {
    use base64::Engine as _;
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consecutive draws never repeat bytes of the pool, across refills and for sizes that
    /// do not divide it; large draws bypass it.
    #[test]
    fn draws_are_distinct_across_refills() {
        let rng = SystemRandom::default();
        let mut seen = std::collections::HashSet::new();
        for n in [32usize, 24, 7, 256, 1000] {
            for _ in 0..200 {
                let mut b = vec![0u8; n];
                rng.fill(&mut b);
                assert!(b.iter().any(|&x| x != 0), "{n} zero bytes: a wiped part of the pool handed out");
                assert!(seen.insert(b), "a {n}-byte draw repeated");
            }
        }
    }

    /// What a thread has handed out is no longer in its pool; the rest is still random.
    #[test]
    fn handed_out_bytes_are_wiped() {
        let rng = SystemRandom::default();
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        rng.fill(&mut first);
        rng.fill(&mut second);
        POOL.with_borrow(|pool| {
            assert_eq!(pool.next, 64);
            assert!(pool.bytes[..64].iter().all(|&x| x == 0));
            assert!(pool.bytes[64..].iter().any(|&x| x != 0));
        });
    }
}
