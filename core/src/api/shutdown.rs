//! The shutdown token: every wait of the client goes through it, so an app
//! closing the engine interrupts a backoff at once.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A clonable cancellation token. Every wait of the client goes through
/// [`Shutdown::sleep`], which returns `Error::Interrupted` as soon as
/// [`Shutdown::trigger`] is called on any clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Shutdown {
    /// A token that is not triggered.
    pub fn new() -> Self {
        Self::default()
    }

    // The flag is a plain bool: a poisoned lock cannot hold a torn value.
    fn flag(&self) -> MutexGuard<'_, bool> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Triggers shutdown: wakes every sleeper; it cannot be undone.
    pub fn trigger(&self) {
        *self.flag() = true;
        self.inner.1.notify_all();
    }

    /// True once [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.flag()
    }

    /// Sleeps for `duration`, or returns `Error::Interrupted` early (or at
    /// once) when shutdown is triggered.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        let deadline = Instant::now().checked_add(duration);
        let mut triggered = self.flag();
        loop {
            if *triggered {
                return Err(Error::Interrupted);
            }
            let remaining = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    deadline - now
                }
                None => Duration::from_secs(3600),
            };
            triggered = self
                .inner
                .1
                .wait_timeout(triggered, remaining)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
