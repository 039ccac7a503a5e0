//! The current time, passed in, so tests fix the clock and step it instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::UnixTime;

/// The current time. `Debug` so that settings holding one can derive theirs.
pub trait Clock: std::fmt::Debug + Send + Sync + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> UnixTime;
}

/// The operating system's wall clock, what every server and client runs on outside tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until told to move: for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock at `at`.
    pub fn new(at: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(at.0)))
    }
    /// Moves the clock forward.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}
