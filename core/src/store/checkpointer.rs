//! Checkpoints of the write-ahead log, on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! limit: that commit copies the whole log into the file and waits for two
//! `fsync`s, tens of milliseconds on a phone's flash. Whichever write comes
//! then pays: a sale rung up, or the sync that applied a thousand changes.
//! Here a thread with its own connection copies the log after commits
//! instead (a `PASSIVE` checkpoint, which never blocks the writer or the
//! readers), at most once per [`DEBOUNCE`] while commits keep coming, and
//! not while a pull is applying pages (the pull rewrites the same index
//! pages page after page; copying them in between is wasted work). The
//! writer keeps an automatic checkpoint with a high limit
//! ([`FALLBACK_PAGES`]) in case this thread cannot keep up.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::key::DbKey;

/// How long the thread lets commits gather before it checkpoints.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint when this thread runs: 64 MiB of
/// log (4 KiB pages).
pub(crate) const FALLBACK_PAGES: i64 = 16_384;

#[derive(Default)]
struct State {
    /// Commits since the last checkpoint.
    dirty: bool,
    /// Pulls in progress: no checkpoint until they end.
    held: u32,
    stop: bool,
    /// The replica's new key, once it was changed: the thread opens its
    /// connection again with it.
    rekeyed: Option<DbKey>,
    /// Checkpoints run (for tests and the status).
    runs: u64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain flags: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tells the checkpoint thread that a commit happened. Cheap: a lock and a
/// notification.
#[derive(Clone)]
pub(crate) struct Kick(Arc<Shared>);

impl Kick {
    pub(crate) fn committed(&self) {
        let mut s = self.0.lock();
        // Only the first commit since the last checkpoint wakes the thread:
        // waking it at every commit would cost a context switch each.
        if !s.dirty {
            s.dirty = true;
            drop(s);
            self.0.wake.notify_one();
        }
    }
}

/// While alive, the thread does not checkpoint (a pull is applying pages);
/// dropping it lets the thread copy what the pull wrote.
pub(crate) struct Hold(Arc<Shared>);

impl Drop for Hold {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.held = s.held.saturating_sub(1);
        s.dirty = true;
        drop(s);
        self.0.wake.notify_one();
    }
}

/// The checkpoint thread of a file replica. Dropping it stops the thread
/// (after the checkpoint it may be running) and closes its connection.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread for the replica at `path`; `None` for an
    /// in-memory database, which has no log.
    pub(crate) fn start(path: &Path, key: Option<&DbKey>) -> Result<Option<Checkpointer>> {
        if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
            return Ok(None);
        }
        let conn = open(path, key)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let path = path.to_path_buf();
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rowsync-checkpoint".into())
            .spawn(move || run(&for_thread, &path, conn))
            .map_err(|e| Error::Database(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Some(Checkpointer {
            shared,
            thread: Some(thread),
        }))
    }

    pub(crate) fn kick(&self) -> Kick {
        Kick(Arc::clone(&self.shared))
    }

    pub(crate) fn hold(&self) -> Hold {
        self.shared.lock().held += 1;
        Hold(Arc::clone(&self.shared))
    }

    /// The replica's key changed: the thread's connection is opened again.
    pub(crate) fn rekeyed(&self, key: DbKey) {
        self.shared.lock().rekeyed = Some(key);
        self.shared.wake.notify_one();
    }

    /// Checkpoints run so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> u64 {
        self.shared.lock().runs
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection that only checkpoints: no cache to speak of, and a short
/// wait for locks (a passive checkpoint does not wait for readers or
/// writers anyway).
fn open(path: &Path, key: Option<&DbKey>) -> Result<Connection> {
    let conn = crate::key::open_beside(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE, key)?;
    conn.busy_timeout(Duration::from_millis(100))?;
    conn.pragma_update(None, "cache_size", -256)?;
    // This connection never writes: no automatic checkpoint of its own.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

fn run(shared: &Shared, path: &Path, mut conn: Connection) {
    let mut s = shared.lock();
    loop {
        while !s.stop && s.rekeyed.is_none() && !(s.dirty && s.held == 0) {
            s = shared.wake.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.stop {
            return;
        }
        if let Some(key) = s.rekeyed.take() {
            drop(s);
            // A failed open keeps the old connection: its checkpoints fail
            // until the next rekey, and the writer's own limit bounds the
            // log meanwhile.
            if let Ok(fresh) = open(path, Some(&key)) {
                conn = fresh;
            }
            s = shared.lock();
            continue;
        }
        // Let the commits of a burst gather.
        let (again, _) = shared
            .wake
            .wait_timeout_while(s, DEBOUNCE, |s| !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        s = again;
        if s.stop {
            return;
        }
        if s.held > 0 {
            continue;
        }
        s.dirty = false;
        drop(s);
        // Busy (another checkpoint, or a pull that began meanwhile) is
        // fine: the next commit asks again.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        s = shared.lock();
        s.runs += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Db, NewRow};

    fn size(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    fn runs(db: &Db) -> u64 {
        db.checkpoint_runs().expect("a file replica has one")
    }

    fn wait_for_runs(db: &Db, above: u64) -> u64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while runs(db) <= above {
            assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        runs(db)
    }

    /// A file replica with a `products` collection.
    fn open(path: &std::path::Path) -> Db {
        let db = Db::open(path, None).unwrap();
        db.ensure_collections(["products"]).unwrap();
        db
    }

    /// One committed record of `products` per call, as a local write makes.
    fn insert(db: &Db, i: i64, data: &str) {
        db.write(|tx| {
            let coll = tx.coll_id("products")?;
            tx.insert_new_record(&NewRow {
                coll,
                server_id: None,
                client_id: Some(i + 1),
                parent_client_id: None,
                row_version: None,
                deleted: false,
                data,
            })
        })
        .unwrap();
    }

    fn count(db: &Db) -> u64 {
        db.read(|conn| {
            let coll = crate::store::coll_id_of(conn, "products")?;
            crate::store::count_rows(conn, coll, false)
        })
        .unwrap()
    }

    /// Many commits leave the copying of the log to the thread: the writer
    /// passes SQLite's usual limit (1,000 pages) without checkpointing, and
    /// the pages reach the file once the thread may run.
    #[test]
    fn the_log_is_copied_by_the_thread_not_by_the_commits() {
        let dir = std::env::temp_dir().join(format!("rowsync-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("replica.db");
        let wal = dir.join("replica.db-wal");
        let db = open(&file);
        let hold = db.pulling().unwrap();
        let before_runs = runs(&db);
        let before = size(&file);
        let filler = format!("{{\"note\":\"{}\"}}", "x".repeat(3_000));
        for i in 0..2_000 {
            insert(&db, i, &filler);
        }
        std::thread::sleep(super::DEBOUNCE * 3);
        assert_eq!(runs(&db), before_runs, "held");
        assert!(
            size(&wal) > 1_000 * 4_096,
            "the writer did not checkpoint at 1,000 pages: log {} bytes",
            size(&wal)
        );
        assert!(size(&file) < before + 1_000_000, "nothing copied yet");
        db.pulled(hold, false).unwrap();
        wait_for_runs(&db, before_runs);
        assert!(
            size(&file) > before + 6_000_000,
            "the thread copied the records into the file ({} -> {} bytes)",
            before,
            size(&file)
        );
        // Reads see everything, and a reopened database too.
        assert_eq!(count(&db), 2_000);
        drop(db);
        let db = open(&file);
        assert_eq!(count(&db), 2_000);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A burst of commits makes few checkpoints, not one each.
    #[test]
    fn a_burst_of_commits_is_checkpointed_a_few_times() {
        let dir = std::env::temp_dir().join(format!("rowsync-ckpt2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = open(&dir.join("replica.db"));
        let before = runs(&db);
        for i in 0..300 {
            insert(&db, i, "{}");
        }
        let after = wait_for_runs(&db, before);
        assert!(
            after - before < 100,
            "{} checkpoints for 300 commits",
            after - before
        );
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_in_memory_replica_has_no_thread() {
        let db = Db::open(std::path::Path::new(":memory:"), None).unwrap();
        assert!(db.checkpoint_runs().is_none());
    }
}
