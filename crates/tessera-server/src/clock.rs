//! Time is passed in, so tests can fix the clock and step it past an expiry instead of
//! sleeping (kanidm's habit). Randomness lives in [`crate::random`].

pub use tessera_types::clock::{Clock, ManualClock, SystemClock};

// Callers outside this crate (the CLI, its tests, the demo) import the randomness source
// from here together with the clock, which they inject side by side as [`crate::Deps`].
pub use crate::random::{Random, SystemRandom};
