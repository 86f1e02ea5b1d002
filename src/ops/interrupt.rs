//! A request to stop (SIGINT, SIGTERM), shared by everything a command runs.
//! Work stops at the next safe point: between messages and folders, never
//! inside a store commit, which always completes. What was committed stays;
//! the next run resumes from it.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Interrupt(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// The signal that asked to stop; 0 while none did.
    signal: AtomicI32,
    notify: Notify,
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interrupt({:?})", self.signal())
    }
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks everything watching to stop; the first signal is the one kept.
    pub fn raise(&self, signal: i32) {
        let _ = self
            .0
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// The signal that asked to stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    pub fn is_raised(&self) -> bool {
        self.signal().is_some()
    }

    /// Waits until a stop is asked for (returns at once if it was).
    pub async fn raised(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }

    /// The exit code for a command that stopped because of it: 128 + the
    /// signal (130 for SIGINT, 143 for SIGTERM), as shells report it.
    pub fn exit_code(&self) -> Option<i32> {
        self.signal().map(|s| 128 + s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_whether_it_started_before_or_after() {
        let i = Interrupt::new();
        let waiting = {
            let i = i.clone();
            tokio::spawn(async move { i.raised().await })
        };
        tokio::task::yield_now().await;
        i.raise(libc::SIGTERM);
        i.raise(libc::SIGINT);
        waiting.await.unwrap();
        i.raised().await;
        assert_eq!(i.exit_code(), Some(143), "the first signal is kept");
    }
}
