//! rowsync-ffi: the foreign-language face of the rowsync engine. Kotlin and
//! Swift reach it through UniFFI (proc-macros only, bindings generated in
//! library mode from this cdylib); C reaches it through the `rowsync_*`
//! functions of [`c_api`], whose header is `include/rowsync.h`. Everything
//! here is a thin wrapper around `rowsync::Engine`: no business logic is
//! written twice. Every exported call is synchronous and may block on disk
//! or network: call it off the UI thread.

uniffi::setup_scaffolding!();

pub mod c_api;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod listeners;
mod live;
mod log;
mod metrics;
mod transport;
mod types;

pub use engine::{DatabaseKey, RowsyncEngine};
pub use error::RowsyncError;
pub use listeners::{ChangeListener, StatusListener, SubscriptionHandle};
pub use live::{LiveQueryHandle, QueryListener, RecordQuery};
pub use log::{LogLevel, LogSink};
pub use metrics::{EngineMetrics, PhaseTimes, RetryCounts, SyncMetricsSummary};
pub use transport::{
    HttpHeader, HttpTransport, TransportFailure, TransportRequest, TransportResponse,
};
pub use types::*;
