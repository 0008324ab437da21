//! The log sink an app can install per engine. The core logs nothing of its
//! own; the wrapper forwards what an app wants in its logs: sync start and
//! finish, sync errors, and each HTTP attempt from the sync log (endpoint,
//! status, duration, tracking id). Never a password, a token or record data.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Per-request detail.
    Debug,
    /// Sync started and finished.
    Info,
    /// A sync failed in a way a later sync may get past.
    Warn,
    /// A sync failed in a way that needs the app or the user.
    Error,
}

/// Receives the engine's log lines. Called on the syncing thread.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One line; `target` is `rowsync::sync` or `rowsync::http`.
    fn log(&self, level: LogLevel, target: String, message: String);
}

/// The installed sink and its threshold.
#[derive(Default)]
pub(crate) struct Logger {
    slot: RwLock<Option<(Arc<dyn LogSink>, LogLevel)>>,
}

impl Logger {
    pub(crate) fn set(&self, sink: Option<(Arc<dyn LogSink>, LogLevel)>) {
        match self.slot.write() {
            Ok(mut g) => *g = sink,
            Err(p) => *p.into_inner() = sink,
        }
    }

    pub(crate) fn enabled(&self, level: LogLevel) -> bool {
        match self.slot.read() {
            Ok(g) => g.as_ref().is_some_and(|(_, min)| level >= *min),
            Err(_) => false,
        }
    }

    pub(crate) fn log(&self, level: LogLevel, target: &str, message: impl FnOnce() -> String) {
        let sink = match self.slot.read() {
            Ok(g) => g.clone(),
            Err(_) => None,
        };
        if let Some((sink, min)) = sink {
            if level >= min {
                let msg = message();
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    sink.log(level, target.to_string(), msg)
                }));
            }
        }
    }
}
