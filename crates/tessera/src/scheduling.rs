//! How the server's request threads are scheduled by the operating system.
//!
//! Measured (issue 17, durable reference tokens at c=16, one core): with the default policy
//! every request that arrives preempts whichever thread is running — mostly the token writer
//! in the middle of its batch — so the core switched about twice per token, and a token cost
//! ~50 µs of CPU at 16 clients against ~30 µs at 64, where requests arrive in bunches. Under
//! `SCHED_BATCH` a request thread that wakes does not preempt the running one (Linux's fair
//! scheduler skips wakeup preemption for batch tasks, since 2.6.16); it runs at the next switch — the writer blocking on its flush, or the end of a
//! slice — and takes what has arrived in one go. 13.3–16.5k → 16.4–20.4k tokens/s in four
//! alternating pairs; JWT issuance unchanged (one thread, never preempted). An idle core
//! still runs a woken thread at once: the policy only changes who yields to whom.

/// The policy of the runtime's threads (`serve --worker-scheduling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerScheduling {
    /// `SCHED_BATCH`: a request arriving waits for the running thread to block or use up its
    /// slice.
    Batch,
    /// `SCHED_OTHER`, the operating system's default.
    Normal,
}

/// Puts the calling thread under `SCHED_BATCH` (Linux; nothing elsewhere). A refusal leaves
/// it under the default policy, which is only slower.
pub fn batch_this_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "SCHED_BATCH refused");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_calling_thread_and_only_it_becomes_a_batch_thread() {
        let (before, after) = std::thread::spawn(|| {
            // SAFETY: plain queries of the calling thread's policy.
            let before = unsafe { libc::sched_getscheduler(0) };
            super::batch_this_thread();
            (before, unsafe { libc::sched_getscheduler(0) })
        })
        .join()
        .unwrap();
        assert_eq!(before, libc::SCHED_OTHER);
        assert_eq!(after, libc::SCHED_BATCH);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER, "the test's own thread is untouched");
    }
}
