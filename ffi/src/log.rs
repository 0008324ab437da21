//! The log sink an app can install per engine. The core produces the lines
//! (sync start and end, every HTTP attempt with endpoint, status, duration and
//! tracking id, pages applied, changes parked) as they happen; this adapter
//! hands them to the foreign sink. Never a password, a token or record data.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Per-request and per-page detail.
    Debug,
    /// Sync started and finished.
    Info,
    /// Something a later sync may get past, or a change parked.
    Warn,
    /// A sync failed in a way that needs the app or the user.
    Error,
}

impl From<LogLevel> for rowsync::LogLevel {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Debug => rowsync::LogLevel::Debug,
            LogLevel::Info => rowsync::LogLevel::Info,
            LogLevel::Warn => rowsync::LogLevel::Warn,
            LogLevel::Error => rowsync::LogLevel::Error,
        }
    }
}

impl From<rowsync::LogLevel> for LogLevel {
    fn from(l: rowsync::LogLevel) -> Self {
        match l {
            rowsync::LogLevel::Debug => LogLevel::Debug,
            rowsync::LogLevel::Info => LogLevel::Info,
            rowsync::LogLevel::Warn => LogLevel::Warn,
            rowsync::LogLevel::Error => LogLevel::Error,
        }
    }
}

/// Receives the engine's log lines. Called on the syncing thread, or on
/// the engine's `rowsync-apply` thread for a pulled page.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One line; `target` is `rowsync::sync`, `rowsync::http`,
    /// `rowsync::pull` or `rowsync::push`.
    fn log(&self, level: LogLevel, target: String, message: String);
}

/// Hands the core's lines to a foreign sink; a sink that throws is ignored.
pub(crate) struct SinkAdapter(pub(crate) Arc<dyn LogSink>);

impl rowsync::LogSink for SinkAdapter {
    fn log(&self, level: rowsync::LogLevel, target: &str, message: &str) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.0
                .log(level.into(), target.to_string(), message.to_string())
        }));
    }
}
