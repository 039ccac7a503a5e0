//! A short memory of the last failure of a call, so that a down authority is not asked again by
//! every caller that arrives meanwhile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_types::clock::Clock;

/// The last failure `E` of one call, remembered for a short window on a clock of whole seconds.
pub struct FailureMemory<E> {
    window: i64,
    clock: Arc<dyn Clock>,
    last: Mutex<Option<(i64, E)>>,
}

impl<E: Clone> FailureMemory<E> {
    /// Remembers failures for `window`, rounded up to whole seconds: a configured 500 ms still
    /// means "not again this second". A zero window remembers nothing.
    pub fn new(window: Duration, clock: Arc<dyn Clock>) -> Self {
        let secs = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let window = secs.saturating_add(i64::from(window.subsec_nanos() > 0));
        Self { window, clock, last: Mutex::new(None) }
    }

    /// The failure remembered now, if any: the caller should not call out meanwhile.
    pub fn recall(&self) -> Option<E> {
        let now = self.clock.now().0;
        match &*self.last.lock().expect("failure lock") {
            Some((until, e)) if now < *until => Some(e.clone()),
            _ => None,
        }
    }

    /// Remembers `e` for the window from now (nothing if the window is zero).
    pub fn remember(&self, e: E) {
        if self.window > 0 {
            let until = self.clock.now().0.saturating_add(self.window);
            *self.last.lock().expect("failure lock") = Some((until, e));
        }
    }

    /// Forgets the last failure (the call succeeded).
    pub fn forget(&self) {
        *self.last.lock().expect("failure lock") = None;
    }
}
