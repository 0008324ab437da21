//! The engine's log lines, for an app that wants them in its own logs: sync
//! start and end, every HTTP attempt (endpoint, status, duration, tracking
//! id), pages applied, changes parked, and the sync's figures (conflicts
//! included; the conflict log holds their detail). Lines never
//! carry a password, a token or record values (field names and ids only).
//! The core writes nowhere by itself: lines go to the sink the app installs.

use std::sync::{Arc, RwLock};

/// Severity of a log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Per-request and per-page detail.
    Debug,
    /// Sync started and ended, conflicts resolved.
    Info,
    /// Something a later sync may get past, or a change parked.
    Warn,
    /// A failure that needs the app or the user.
    Error,
}

/// Receives log lines. Called on the thread that does the work, with no
/// engine lock held.
pub trait LogSink: Send + Sync {
    /// One line; `target` is `rowsync::sync`, `rowsync::http`,
    /// `rowsync::pull` or `rowsync::push`.
    fn log(&self, level: LogLevel, target: &str, message: &str);
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

    /// Logs `message()` (built only when a sink wants this level).
    pub(crate) fn log(&self, level: LogLevel, target: &str, message: impl FnOnce() -> String) {
        let sink = match self.slot.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some((sink, min)) = sink {
            if level >= min {
                sink.log(level, target, &message());
            }
        }
    }
}
