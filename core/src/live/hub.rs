//! The watches and the thread that runs them. A data-change event only
//! marks the watches of the collections it names, on the writer's thread,
//! in a few instructions; the `rowsync-live` thread, woken, lets a burst
//! settle for [`SETTLE`], then runs each marked query once on the reader
//! connection and calls its listener when the result differs from the last
//! one delivered. A write that lands while a query runs marks it again, so
//! the last run of a burst always sees its final state.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use serde_json::Value;

use super::query::Plan;
use crate::error::{Error, Result};
use crate::listeners::{ChangeEvent, ChangeListener, ChangeOrigin};
use crate::store::Db;

/// How long the thread lets a burst of changes settle before it runs the
/// queries they touched (a first result does not wait).
pub(crate) const SETTLE: Duration = Duration::from_millis(10);

/// Told the records of a watched query, at once and after each change of
/// them. Called on the engine's `rowsync-live` thread, one call at a time,
/// with no engine lock held: it may read and write through the engine, but
/// should return quickly (the other queries wait).
pub trait QueryListener: Send + Sync {
    /// The query's records.
    fn on_result(&self, records: &[Value]);

    /// A run failed (the replica could not be read); the watch goes on and
    /// runs again on the next change.
    fn on_error(&self, error: &Error) {
        let _ = error;
    }
}

impl<F: Fn(&[Value]) + Send + Sync> QueryListener for F {
    fn on_result(&self, records: &[Value]) {
        self(records)
    }
}

/// One watched query.
struct Watch {
    plan: Plan,
    listener: Arc<dyn QueryListener>,
    /// False once cancelled: no call starts after that.
    active: AtomicBool,
    /// Held while the query runs and its listener is called.
    gate: Mutex<()>,
    runs: AtomicU64,
    /// The result last delivered.
    last: Mutex<Option<Vec<Value>>>,
}

struct Entry {
    id: u64,
    watch: Arc<Watch>,
    dirty: bool,
    /// Not run yet: its first result does not wait for a burst to settle.
    fresh: bool,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    next: u64,
    stopped: bool,
    started: bool,
}

/// What the engine, the handles and the thread share.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    db: Weak<Db>,
    thread: OnceLock<ThreadId>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Entries are whole values, each changed in one step: a panic
        // elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark(&self, mut touched: impl FnMut(&Plan) -> bool) {
        let mut st = self.state();
        let mut any = false;
        for e in st.entries.iter_mut().filter(|e| touched(&e.watch.plan)) {
            e.dirty = true;
            any = true;
        }
        if any {
            self.wake.notify_one();
        }
    }

    fn remove(&self, id: u64) {
        self.state().entries.retain(|e| e.id != id);
    }

    /// The thread's loop: wait for marks, settle, run, deliver.
    fn work(&self) {
        loop {
            let fresh_only = {
                let mut st = self.state();
                while !st.stopped && !st.entries.iter().any(|e| e.dirty) {
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.stopped {
                    return;
                }
                st.entries.iter().filter(|e| e.dirty).all(|e| e.fresh)
            };
            if !fresh_only {
                std::thread::sleep(SETTLE);
            }
            let batch: Vec<Arc<Watch>> = {
                let mut st = self.state();
                if st.stopped {
                    return;
                }
                st.entries
                    .iter_mut()
                    .filter(|e| e.dirty)
                    .map(|e| {
                        e.dirty = false;
                        e.fresh = false;
                        e.watch.clone()
                    })
                    .collect()
            };
            let Some(db) = self.db.upgrade() else {
                return;
            };
            for w in batch {
                run(&db, &w);
            }
        }
    }
}

/// Runs one watch's query and tells its listener when the result changed.
fn run(db: &Db, w: &Watch) {
    let _gate = w.gate.lock().unwrap_or_else(|p| p.into_inner());
    if !w.active.load(Ordering::SeqCst) {
        return;
    }
    w.runs.fetch_add(1, Ordering::SeqCst);
    let result = db.read(|conn| w.plan.run(conn));
    // A listener that panics is the app's bug: it must not stop the
    // other watches.
    let _ = catch_unwind(AssertUnwindSafe(|| match result {
        Ok(records) => {
            let mut last = w.last.lock().unwrap_or_else(|p| p.into_inner());
            if last.as_ref() != Some(&records) {
                w.listener.on_result(&records);
                *last = Some(records);
            }
        }
        Err(e) => w.listener.on_error(&e),
    }));
}

/// The change listener that marks the watches an event touches.
struct Marker(Arc<Shared>);

impl ChangeListener for Marker {
    fn on_change(&self, events: &[ChangeEvent]) {
        self.0.mark(|plan| {
            events.iter().any(|e| {
                e.collection == plan.collection
                    || (e.origin == ChangeOrigin::Sync
                        && plan.parent.as_deref() == Some(e.collection.as_str()))
            })
        });
    }
}

/// The engine's live queries; dropping it stops the thread.
pub(crate) struct Live {
    shared: Arc<Shared>,
}

impl Live {
    /// No watch yet; queries run on `db`.
    pub(crate) fn new(db: &Arc<Db>) -> Live {
        Live {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                db: Arc::downgrade(db),
                thread: OnceLock::new(),
            }),
        }
    }

    /// The change listener to register with the engine's listeners.
    pub(crate) fn marker(&self) -> Arc<dyn ChangeListener> {
        Arc::new(Marker(self.shared.clone()))
    }

    /// Marks every watch (the replica was wiped).
    pub(crate) fn touch_all(&self) {
        self.shared.mark(|_| true);
    }

    /// Watches `plan`: its first result comes at once, from the thread.
    pub(crate) fn watch(&self, plan: Plan, listener: Arc<dyn QueryListener>) -> Result<LiveQuery> {
        let watch = Arc::new(Watch {
            plan,
            listener,
            active: AtomicBool::new(true),
            gate: Mutex::new(()),
            runs: AtomicU64::new(0),
            last: Mutex::new(None),
        });
        let mut st = self.shared.state();
        if !st.started {
            let shared = self.shared.clone();
            let handle = std::thread::Builder::new()
                .name("rowsync-live".into())
                .spawn(move || shared.work())
                .map_err(|e| {
                    Error::Database(format!("could not start the live-query thread: {e}"))
                })?;
            let _ = self.shared.thread.set(handle.thread().id());
            st.started = true;
        }
        st.next += 1;
        let id = st.next;
        st.entries.push(Entry {
            id,
            watch: watch.clone(),
            dirty: true,
            fresh: true,
        });
        self.shared.wake.notify_one();
        Ok(LiveQuery {
            id,
            watch,
            shared: Arc::downgrade(&self.shared),
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shared.state().stopped = true;
        self.shared.wake.notify_all();
    }
}

/// A watched query. Its listener is called until `cancel` is called or the
/// handle is dropped; once either returned, it is never called again (a
/// call in progress on another thread is waited for).
pub struct LiveQuery {
    id: u64,
    watch: Arc<Watch>,
    shared: Weak<Shared>,
}

impl LiveQuery {
    /// Stops the watch now. Calling it again does nothing. From inside the
    /// listener, the call in progress ends as usual and none follows.
    pub fn cancel(&self) {
        if !self.watch.active.swap(false, Ordering::SeqCst) {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        shared.remove(self.id);
        if shared.thread.get() != Some(&std::thread::current().id()) {
            // Wait for a run in progress (from inside it, that would never end).
            drop(self.watch.gate.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// True until cancelled.
    pub fn is_active(&self) -> bool {
        self.watch.active.load(Ordering::SeqCst)
    }

    /// How many times the query ran (the first run included); a run whose
    /// result did not change calls no listener.
    pub fn runs(&self) -> u64 {
        self.watch.runs.load(Ordering::SeqCst)
    }
}

impl Drop for LiveQuery {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Receiver, Sender};

    use serde_json::json;

    use super::*;
    use crate::catalogue::Dialect;
    use crate::engine::Engine;
    use crate::live::Query;
    use crate::settings::Settings;

    const WAIT: Duration = Duration::from_secs(60);

    fn engine() -> Engine {
        let e = Engine::open(":memory:").unwrap();
        e.configure(Settings {
            dialect: Dialect::Documented,
            ..Settings::default()
        })
        .unwrap();
        e
    }

    /// Sends each result; blocks in it while `hold` has a receiver.
    struct Probe {
        out: Mutex<Sender<Vec<Value>>>,
        hold: Mutex<Option<Receiver<()>>>,
    }

    impl QueryListener for Probe {
        fn on_result(&self, records: &[Value]) {
            let _ = self.out.lock().unwrap().send(records.to_vec());
            if let Some(rx) = self.hold.lock().unwrap().take() {
                let _ = rx.recv();
            }
        }
    }

    fn probe() -> (Arc<Probe>, Receiver<Vec<Value>>) {
        let (tx, rx) = channel();
        let p = Arc::new(Probe {
            out: Mutex::new(tx),
            hold: Mutex::new(None),
        });
        (p, rx)
    }

    fn names(records: &[Value]) -> Vec<&str> {
        records.iter().filter_map(|r| r["name"].as_str()).collect()
    }

    #[test]
    fn a_query_is_checked_before_it_is_watched() {
        let e = engine();
        let (p, _rx) = probe();
        let unknown = e.watch(&Query::new("nope"), p.clone());
        assert!(matches!(unknown, Err(Error::UnknownCollection(c)) if c == "nope"));
        for (q, field) in [
            (Query::new("products").filter("na me", 1), "na me"),
            (Query::new("products").filter("$.x", 1), "$.x"),
            (Query::new("products").filter("price", json!([1])), "price"),
            (
                Query::new("products").filter("price", json!({"a": 1})),
                "price",
            ),
            (Query::new("products").order_by("1st"), "1st"),
            (Query::new("products").order_by("a\"b"), "a\"b"),
            (Query::new("products").limit(0), "limit"),
            (Query::new("products").limit(MAX + 1), "limit"),
        ] {
            match e.watch(&q, p.clone()) {
                Err(Error::InvalidQuery {
                    collection,
                    field: f,
                    ..
                }) => assert_eq!((collection.as_str(), f.as_str()), ("products", field)),
                other => panic!("{q:?}: {:?}", other.map(|_| ())),
            }
        }
    }

    const MAX: u32 = crate::live::MAX_LIMIT;

    #[test]
    fn filters_order_and_limit_select_the_records() {
        let e = engine();
        for (name, cat, price, vip) in [
            ("a", 1, 30, true),
            ("b", 2, 10, false),
            ("c", 1, 20, false),
            ("d", 1, 40, true),
        ] {
            e.create(
                "products",
                json!({"name": name, "cat": cat, "price": price, "vip": vip}),
            )
            .unwrap();
        }
        e.create("products", json!({"name": "e", "cat": "1"}))
            .unwrap();
        let q = |q: Query| names(&e.query(&q).unwrap()).join("");
        assert_eq!(q(Query::new("products")), "abcde");
        assert_eq!(
            q(Query::new("products").filter("cat", 1)),
            "acd",
            "\"1\" is text"
        );
        assert_eq!(q(Query::new("products").filter("cat", "1")), "e");
        assert_eq!(q(Query::new("products").filter("vip", true)), "ad");
        assert_eq!(q(Query::new("products").filter("price", Value::Null)), "e");
        assert_eq!(
            q(Query::new("products")
                .filter("cat", 1)
                .order_by_desc("price")
                .limit(2)),
            "da"
        );
        assert_eq!(q(Query::new("products").order_by("price")), "ebcad");
        let c = e
            .query(&Query::new("products").filter("name", "c"))
            .unwrap();
        let cid = c[0]["productClientId"].as_i64().unwrap();
        e.delete("products", crate::record::RecordId::Client(cid))
            .unwrap();
        assert_eq!(
            q(Query::new("products").filter("cat", 1)),
            "ad",
            "no tombstones"
        );
    }

    #[test]
    fn a_burst_runs_a_query_once_more_and_untouched_collections_never() {
        let e = engine();
        let (pa, ra) = probe();
        let (pb, rb) = probe();
        let (pc, rc) = probe();
        let a = e.watch(&Query::new("products").order_by("n"), pa).unwrap();
        let b = e.watch(&Query::new("persons"), pb.clone()).unwrap();
        let c = e.watch(&Query::new("orders"), pc).unwrap();
        for rx in [&ra, &rb, &rc] {
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), Vec::<Value>::new());
        }
        // Hold the thread inside `b`'s listener while 1,000 writes land.
        let (release, held) = channel();
        *pb.hold.lock().unwrap() = Some(held);
        e.create("persons", json!({"name": "p"})).unwrap();
        assert_eq!(rb.recv_timeout(WAIT).unwrap().len(), 1);
        for i in 0..1_000 {
            e.create("products", json!({"name": format!("x{i}"), "n": i}))
                .unwrap();
        }
        release.send(()).unwrap();
        let last = ra.recv_timeout(WAIT).unwrap();
        assert_eq!(last.len(), 1_000);
        assert_eq!(last[999]["n"], 999);
        assert_eq!(a.runs(), 2, "one run for the whole burst");
        assert_eq!(b.runs(), 2);
        assert_eq!(c.runs(), 1, "nobody touched orders");
        assert!(rc.try_recv().is_err());
    }

    #[test]
    fn no_call_after_cancel_and_none_for_an_unchanged_result() {
        let e = engine();
        let (pa, ra) = probe();
        let (pd, rd) = probe();
        // `d` first: in a run of both, it runs before `a` is told.
        let d = e
            .watch(&Query::new("products").filter("name", "x"), pd)
            .unwrap();
        let a = e.watch(&Query::new("products"), pa).unwrap();
        assert!(ra.recv_timeout(WAIT).unwrap().is_empty());
        assert!(rd.recv_timeout(WAIT).unwrap().is_empty());
        e.create("products", json!({"name": "y"})).unwrap();
        assert_eq!(names(&ra.recv_timeout(WAIT).unwrap()), ["y"]);
        a.cancel();
        assert!(!a.is_active());
        e.create("products", json!({"name": "x"})).unwrap();
        assert_eq!(names(&rd.recv_timeout(WAIT).unwrap()), ["x"]);
        // `d` ran for `y` too, and told nobody: its result had not changed.
        assert_eq!(d.runs(), 3);
        assert!(ra.try_recv().is_err(), "cancelled before the write");
        drop(d);
        e.create("products", json!({"name": "x"})).unwrap();
        e.wipe(true).unwrap();
        assert!(rd.try_recv().is_err());
    }

    #[test]
    fn a_listener_may_cancel_its_own_watch_and_write() {
        let e = Arc::new(engine());
        let slot: Arc<Mutex<Option<LiveQuery>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = channel::<usize>();
        let (s, en) = (slot.clone(), e.clone());
        let tx = Mutex::new(tx);
        let w = e
            .watch(
                &Query::new("products"),
                Arc::new(move |records: &[Value]| {
                    let _ = tx.lock().unwrap().send(records.len());
                    if records.len() == 1 {
                        if let Some(w) = s.lock().unwrap().take() {
                            w.cancel();
                        }
                        let _ = en.create("products", json!({"name": "from inside"}));
                    }
                }),
            )
            .unwrap();
        *slot.lock().unwrap() = Some(w);
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 0);
        e.create("products", json!({"name": "a"})).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1);
        // The write from inside is there; the watch told nobody of it.
        let (pd, rd) = probe();
        let _d = e.watch(&Query::new("products"), pd).unwrap();
        assert_eq!(rd.recv_timeout(WAIT).unwrap().len(), 2);
        assert!(rx.try_recv().is_err());
        drop(e);
    }
}
