//! Listeners: the app's callbacks for data changes and connection state. A
//! subscription lives as long as the handle the app holds; dropping it (or
//! calling `cancel`) unsubscribes. Listeners are called after the change is
//! committed and with no engine lock held, so they may call the engine.

use std::sync::{Arc, Mutex, Weak};

use crate::api::client::ConnectionState;
use crate::local::ChangeEvent;

/// Called after local writes and applied sync steps.
pub trait ChangeListener: Send + Sync {
    /// The records that changed, per collection.
    fn on_change(&self, events: &[ChangeEvent]);
}

/// Called with the connection state at once, then on every change.
pub trait StatusListener: Send + Sync {
    /// The new state.
    fn on_status(&self, state: &ConnectionState);
}

type Slots<T> = Mutex<Vec<(u64, Arc<T>)>>;

/// The engine's listeners.
#[derive(Default)]
pub struct Registry {
    next: Mutex<u64>,
    changes: Slots<dyn ChangeListener>,
    statuses: Slots<dyn StatusListener>,
}

fn snapshot<T: ?Sized>(slots: &Slots<T>) -> Vec<Arc<T>> {
    match slots.lock() {
        Ok(v) => v.iter().map(|(_, l)| l.clone()).collect(),
        Err(p) => p.into_inner().iter().map(|(_, l)| l.clone()).collect(),
    }
}

impl Registry {
    fn id(&self) -> u64 {
        let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
        *n += 1;
        *n
    }

    fn add<T: ?Sized>(self: &Arc<Self>, slots: &Slots<T>, listener: Arc<T>) -> Subscription {
        let id = self.id();
        slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, listener));
        Subscription {
            id,
            registry: Arc::downgrade(self),
        }
    }

    pub(crate) fn add_change(self: &Arc<Self>, l: Arc<dyn ChangeListener>) -> Subscription {
        self.add(&self.changes, l)
    }

    pub(crate) fn add_status(self: &Arc<Self>, l: Arc<dyn StatusListener>) -> Subscription {
        self.add(&self.statuses, l)
    }

    fn remove(&self, id: u64) {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, _)| *i != id);
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, _)| *i != id);
    }

    pub(crate) fn emit_changes(&self, events: &[ChangeEvent]) {
        if events.is_empty() {
            return;
        }
        for l in snapshot(&self.changes) {
            l.on_change(events);
        }
    }

    pub(crate) fn emit_status(&self, state: &ConnectionState) {
        for l in snapshot(&self.statuses) {
            l.on_status(state);
        }
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    registry: Weak<Registry>,
}

impl Subscription {
    /// Unsubscribes now.
    pub fn cancel(&self) {
        if let Some(r) = self.registry.upgrade() {
            r.remove(self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}
