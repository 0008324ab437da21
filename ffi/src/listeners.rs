//! Listeners the app implements (foreign traits) and the handle that keeps a
//! subscription alive. The core already gives a status listener the current
//! state at once, then every change; this module only adapts the types. A
//! listener that throws must not take the engine down, so each call is
//! fenced with `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::types::{ChangeBatch, ConnectionStatus};

/// Receives the records that changed, after local writes and applied sync
/// steps. Called on the thread that made the change (for a pulled page,
/// the engine's own `rowsync-apply` thread, while `sync` runs), with no
/// engine lock held: it may read and write through the engine, but should
/// return quickly (the pull's next page waits for it).
#[uniffi::export(foreign)]
pub trait ChangeListener: Send + Sync {
    /// The records that changed, per collection.
    fn on_change(&self, changes: Vec<ChangeBatch>);
}

/// Receives the connection state at once, then every change of it.
#[uniffi::export(foreign)]
pub trait StatusListener: Send + Sync {
    /// The new state.
    fn on_status(&self, status: ConnectionStatus);
}

pub(crate) struct ChangeAdapter(pub(crate) Arc<dyn ChangeListener>);

impl rowsync::ChangeListener for ChangeAdapter {
    fn on_change(&self, events: &[rowsync::ChangeEvent]) {
        let batch: Vec<ChangeBatch> = events.iter().map(ChangeBatch::from).collect();
        // A throwing listener is the app's bug; it must not crash the sync.
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.on_change(batch)));
    }
}

pub(crate) struct StatusAdapter(pub(crate) Arc<dyn StatusListener>);

impl rowsync::StatusListener for StatusAdapter {
    fn on_status(&self, state: &rowsync::ConnectionState) {
        let status = ConnectionStatus::from(state);
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.on_status(status)));
    }
}

/// A live subscription. The listener is called until `cancel()` is called or
/// the handle is destroyed (Kotlin: `close()`/`use {}`; Swift: released).
#[derive(uniffi::Object)]
pub struct SubscriptionHandle {
    inner: Mutex<Option<rowsync::Subscription>>,
}

impl SubscriptionHandle {
    pub(crate) fn new(sub: rowsync::Subscription) -> Arc<Self> {
        Arc::new(SubscriptionHandle {
            inner: Mutex::new(Some(sub)),
        })
    }
}

#[uniffi::export]
impl SubscriptionHandle {
    /// Stops the listener now. Calling it again does nothing.
    pub fn cancel(&self) {
        let sub = match self.inner.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(s) = sub {
            s.cancel();
        }
    }

    /// True until `cancel()` was called.
    pub fn is_active(&self) -> bool {
        match self.inner.lock() {
            Ok(g) => g.is_some(),
            Err(p) => p.into_inner().is_some(),
        }
    }
}
