//! The shutdown token: every wait of the client goes through it, so an app
//! closing the engine interrupts a backoff at once. It also carries the
//! client's clock: the real one, or a [`Clock`] a test installs (a virtual
//! clock makes backoff, `Retry-After` and the sync's deadline instantaneous
//! and deterministic, for simulation).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// A source of time for the client's waits and deadlines. The engine uses
/// the real clock unless one is installed with `Engine::set_clock`.
pub trait Clock: Send + Sync {
    /// Monotonic time since an arbitrary origin (never goes back).
    fn monotonic(&self) -> Duration;
    /// The wall-clock time now.
    fn now(&self) -> DateTime<Utc>;
    /// Waits `duration` of this clock's time. A virtual clock just moves on.
    fn sleep(&self, duration: Duration);
}

/// A virtual clock: time moves only when someone sleeps on it or calls
/// [`VirtualClock::advance`]. Cheap to clone; clones share the time.
#[derive(Clone, Debug)]
pub struct VirtualClock {
    state: Arc<Mutex<Duration>>,
    origin: DateTime<Utc>,
}

impl VirtualClock {
    /// A clock at `origin` (wall time), monotonic zero.
    pub fn new(origin: DateTime<Utc>) -> Self {
        VirtualClock {
            state: Arc::new(Mutex::new(Duration::ZERO)),
            origin,
        }
    }

    fn elapsed(&self) -> MutexGuard<'_, Duration> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time on by `duration`.
    pub fn advance(&self, duration: Duration) {
        let mut t = self.elapsed();
        *t = t.saturating_add(duration);
    }
}

impl Clock for VirtualClock {
    fn monotonic(&self) -> Duration {
        *self.elapsed()
    }

    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(*self.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.origin
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

/// The real clock's origin for [`Shutdown::monotonic`].
fn process_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// A clonable cancellation token. Every wait of the client goes through
/// [`Shutdown::sleep`], which returns `Error::Interrupted` as soon as
/// [`Shutdown::trigger`] is called on any clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<(Mutex<bool>, Condvar)>,
    clock: Arc<RwLock<Option<Arc<dyn Clock>>>>,
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

    /// Installs `clock` for every clone of this token (`None`: the real one).
    pub fn set_clock(&self, clock: Option<Arc<dyn Clock>>) {
        *self.clock.write().unwrap_or_else(|e| e.into_inner()) = clock;
    }

    fn installed(&self) -> Option<Arc<dyn Clock>> {
        self.clock.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Monotonic time on this token's clock.
    pub fn monotonic(&self) -> Duration {
        match self.installed() {
            Some(c) => c.monotonic(),
            None => process_origin().elapsed(),
        }
    }

    /// Wall time on this token's clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self.installed() {
            Some(c) => c.now(),
            None => Utc::now(),
        }
    }

    /// Wall time on this token's clock, as a `SystemTime`.
    pub fn system_now(&self) -> SystemTime {
        match self.installed() {
            Some(c) => c.now().into(),
            None => SystemTime::now(),
        }
    }

    /// Sleeps for `duration`, or returns `Error::Interrupted` early (or at
    /// once) when shutdown is triggered.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        if let Some(clock) = self.installed() {
            if self.is_triggered() {
                return Err(Error::Interrupted);
            }
            clock.sleep(duration);
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_when_slept_on_and_still_hears_shutdown() {
        let s = Shutdown::new();
        let origin = Utc::now() - chrono::Duration::days(400);
        let clock = VirtualClock::new(origin);
        s.set_clock(Some(Arc::new(clock.clone())));
        let real = Instant::now();
        assert_eq!(s.monotonic(), Duration::ZERO);
        s.sleep(Duration::from_secs(3_600)).unwrap();
        assert!(real.elapsed() < Duration::from_secs(5), "no real sleep");
        assert_eq!(s.monotonic(), Duration::from_secs(3_600));
        assert_eq!(s.now(), origin + chrono::Duration::hours(1));
        clock.advance(Duration::from_secs(60));
        assert_eq!(s.clone().monotonic(), Duration::from_secs(3_660));
        s.trigger();
        assert!(matches!(
            s.sleep(Duration::from_secs(1)),
            Err(Error::Interrupted)
        ));
        s.set_clock(None);
        assert!(
            (s.now() - Utc::now()).num_seconds().abs() < 5,
            "the real clock again"
        );
    }
}
