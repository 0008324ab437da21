//! Listeners: the app's callbacks for data changes and connection state,
//! the change events they are told, and the connection state last told. A
//! subscription lives as long as the handle the app holds; dropping it (or
//! calling `cancel`) unsubscribes. Listeners are called after the change is
//! committed and with no engine lock held, so they may call the engine.

use std::sync::{Arc, Mutex, Weak};

use crate::status::ConnectionState;

/// A record that changed, by its ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordRef {
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any.
    pub client_id: Option<i64>,
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOrigin {
    /// A local write by the app.
    Local,
    /// A pull, a push confirmation or a conflict resolution.
    Sync,
}

/// Records of one collection that changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeEvent {
    /// The collection.
    pub collection: String,
    /// The records.
    pub records: Vec<RecordRef>,
    /// Where the change came from.
    pub origin: ChangeOrigin,
}

/// Collects change events, one per collection.
#[derive(Debug, Default)]
pub struct Changes {
    events: Vec<ChangeEvent>,
}

impl Changes {
    /// Notes that a record changed.
    pub fn note(
        &mut self,
        collection: &str,
        server_id: Option<i64>,
        client_id: Option<i64>,
        origin: ChangeOrigin,
    ) {
        let r = RecordRef {
            server_id,
            client_id,
        };
        match self
            .events
            .iter_mut()
            .find(|e| e.collection == collection && e.origin == origin)
        {
            Some(e) => e.records.push(r),
            None => self.events.push(ChangeEvent {
                collection: collection.to_string(),
                records: vec![r],
                origin,
            }),
        }
    }

    /// The events collected.
    pub fn into_events(self) -> Vec<ChangeEvent> {
        self.events
    }
}

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

/// The engine's listeners, and the connection state they were last told.
pub struct Registry {
    next: Mutex<u64>,
    changes: Slots<dyn ChangeListener>,
    statuses: Slots<dyn StatusListener>,
    state: Mutex<ConnectionState>,
}

fn snapshot<T: ?Sized>(slots: &Slots<T>) -> Vec<Arc<T>> {
    match slots.lock() {
        Ok(v) => v.iter().map(|(_, l)| l.clone()).collect(),
        Err(p) => p.into_inner().iter().map(|(_, l)| l.clone()).collect(),
    }
}

impl Registry {
    /// No listener yet; the connection state starts as `state`.
    pub(crate) fn new(state: ConnectionState) -> Registry {
        Registry {
            next: Mutex::new(0),
            changes: Mutex::new(Vec::new()),
            statuses: Mutex::new(Vec::new()),
            state: Mutex::new(state),
        }
    }

    /// The connection state last set.
    pub(crate) fn state(&self) -> ConnectionState {
        // A plain value, assigned whole: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets the connection state; the status listeners are told when it
    /// changed.
    pub(crate) fn set_state(&self, state: ConnectionState) {
        let changed = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let changed = *s != state;
            *s = state.clone();
            changed
        };
        if changed {
            self.emit_status(&state);
        }
    }

    /// Tells the status listeners a notice (`ClockSkewed`) without making
    /// it the state: the state last set stays what `state()` answers.
    pub(crate) fn notice(&self, notice: &ConnectionState) {
        self.emit_status(notice);
    }

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

    fn emit_status(&self, state: &ConnectionState) {
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
