//! The database handle and its connections: [`Db`] (the writer behind a
//! mutex, a reader beside it, the checkpoint thread), [`Store`] (the writer
//! with its caches) and [`Tx`] (one write transaction), and the reads that
//! span every table (counts, whether the replica holds data).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::key::DbKey;
use crate::locks::lock;
use crate::schema;
use crate::store::checkpointer::{self, Checkpointer};

/// Write-ahead-log pages allowed to accumulate during a pull (64 MiB).
const PULL_WAL_PAGES: i64 = 16_384;

/// The replica's database as the engine and its flows hold it: the one
/// writer connection, a read-only connection beside it (file databases),
/// and the thread that checkpoints the write-ahead log.
pub(crate) struct Db {
    /// First, so that it stops and closes its connection before the others
    /// close.
    checkpointer: Option<Checkpointer>,
    /// Declared before the writer so it closes first: the writer's close,
    /// the last one, folds the WAL back into the file.
    reader: Option<Mutex<Connection>>,
    writer: Mutex<Store>,
    /// The replica's file (for a reader opened again after a rekey).
    path: PathBuf,
}

/// While alive, a pull is applying pages: the checkpoint thread waits and
/// the writer lets its log grow ([`Db::pulling`]).
pub(crate) struct PullWal {
    _hold: Option<checkpointer::Hold>,
}

impl Db {
    /// Opens (or creates) the replica at `path` (`:memory:` for an
    /// in-memory one), encrypted with `key` if given.
    pub(crate) fn open(path: &Path, key: Option<&DbKey>) -> Result<Db> {
        let mut store = Store::open_keyed(path, key, std::iter::empty())?;
        let reader = open_reader(path, key)?.map(Mutex::new);
        let checkpointer = Checkpointer::start(path, key)?;
        if let Some(c) = &checkpointer {
            store.checkpoint_elsewhere(c.kick())?;
        }
        Ok(Db {
            checkpointer,
            reader,
            writer: Mutex::new(store),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` in one write transaction and commits it; an error rolls
    /// everything `f` wrote back.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let mut store = lock(&self.writer)?;
        let mut tx = store.begin()?;
        let out = f(&mut tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs a read on the reader connection (or on the writer's, for an
    /// in-memory database). It sees every committed write.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.reader {
            Some(reader) => f(&*lock(reader)?),
            None => f(lock(&self.writer)?.conn()),
        }
    }

    /// Gives every named collection its row (idempotent).
    pub(crate) fn ensure_collections<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        lock(&self.writer)?.ensure_collections(names)
    }

    /// Changes the key of this encrypted replica (every page is written
    /// again); the reader and the checkpoint thread open again with it.
    pub(crate) fn rekey(&self, key: &DbKey) -> Result<()> {
        let store = lock(&self.writer)?;
        crate::key::rekey(store.conn(), key)?;
        if let Some(c) = &self.checkpointer {
            c.rekeyed(key.clone());
        }
        if let Some(reader) = &self.reader {
            if let Some(fresh) = open_reader(&self.path, Some(key))? {
                *lock(reader)? = fresh;
            }
        }
        Ok(())
    }

    /// Sets the writer's page cache, in KiB.
    pub(crate) fn set_cache_kib(&self, kib: i64) -> Result<()> {
        lock(&self.writer)?.set_cache_kib(kib)
    }

    /// Defers the write-ahead log's checkpoints while a pull applies its
    /// pages: a first sync rewrites the same index pages page after page,
    /// and checkpointing every 4 MiB copied them to the database over and
    /// over. The checkpoint thread is held off until [`Db::pulled`].
    pub(crate) fn pulling(&self) -> Result<PullWal> {
        let hold = self.checkpointer.as_ref().map(Checkpointer::hold);
        lock(&self.writer)?.set_wal_autocheckpoint(PULL_WAL_PAGES)?;
        Ok(PullWal { _hold: hold })
    }

    /// Ends [`Db::pulling`]. After a `big` pull, with no checkpoint thread,
    /// the log is checkpointed at once (without waiting for readers), so the
    /// app's next write does not pay for it; the thread, let go, copies it
    /// off the sync's path.
    pub(crate) fn pulled(&self, wal: PullWal, big: bool) -> Result<()> {
        let store = lock(&self.writer)?;
        store.set_wal_autocheckpoint(store.wal_limit())?;
        if big && !store.checkpoints_elsewhere() {
            store.checkpoint_passive()?;
        }
        drop(store);
        drop(wal);
        Ok(())
    }

    /// Checkpoints the thread ran (none without one).
    #[cfg(test)]
    pub(crate) fn checkpoint_runs(&self) -> Option<u64> {
        self.checkpointer.as_ref().map(Checkpointer::runs)
    }
}

/// Per-collection counts for the status.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    /// Changes waiting to be pushed.
    pub pending: u64,
    /// Changes parked in the dead-letter queue.
    pub parked: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Conflict-log entries.
    pub conflicts: u64,
    /// Creates sent in a save whose answer never came: the server may have
    /// them; a pull confirms them by client id before any is sent again.
    pub in_doubt: u64,
    /// Uploads queued (not parked).
    pub uploads: u64,
    /// Disputes queued (not parked).
    pub disputes: u64,
}

/// Caches that live beside the connection: collection ids and the next
/// outbox sequence number.
pub struct Caches {
    coll_ids: HashMap<String, i64>,
    next_seq: i64,
    /// Told of each commit (the engine's checkpoint thread), if any.
    kick: Option<checkpointer::Kick>,
    /// Who makes the changes written now (read from the settings and the
    /// session; forgotten when either is written).
    pub(super) author: Option<Author>,
}

/// Who makes the changes written now (`handover.rs` reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Author {
    /// The settings' user name (none when empty).
    pub(crate) user: Option<String>,
    /// That user's visitor, when the stored login is that user's.
    pub(crate) visitor: Option<i64>,
}

/// The writer connection with its caches, used by one thread at a time
/// ([`Db`] holds it behind a mutex).
pub struct Store {
    conn: Connection,
    caches: Caches,
}

/// One write transaction with the caches it may use.
pub struct Tx<'a> {
    pub(super) tx: Transaction<'a>,
    pub(super) caches: &'a mut Caches,
    /// Collections this transaction gave a row: cached once it commits.
    added: Vec<(String, i64)>,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (or creates) the database at `path`; `:memory:` for a private
    /// in-memory database. `collections` are the catalogue's names, each
    /// given its row up front so no flow ever has to create one.
    pub fn open<'a>(path: &Path, collections: impl IntoIterator<Item = &'a str>) -> Result<Store> {
        Self::open_keyed(path, None, collections)
    }

    /// [`Store::open`] for a replica encrypted with `key` (a new file is
    /// created encrypted). A wrong or missing key fails before anything is
    /// written.
    pub fn open_keyed<'a>(
        path: &Path,
        key: Option<&DbKey>,
        collections: impl IntoIterator<Item = &'a str>,
    ) -> Result<Store> {
        let memory = path.as_os_str() == ":memory:" || path.as_os_str().is_empty();
        if !memory && path.exists() {
            // The key is tried on a read-only connection first: one that
            // fails must not write anything, not even a WAL checkpoint on
            // close, so the file stays byte for byte as it was.
            let probe =
                crate::key::open_beside(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, key)?;
            crate::key::check(&probe, path, key.is_some())?;
        }
        let mut conn = if memory {
            Connection::open_in_memory()?
        } else {
            Connection::open(path)?
        };
        if let Some(key) = key {
            crate::key::apply(&conn, key)?;
        }
        crate::key::check(&conn, path, key.is_some())?;
        schema::init(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        let max_seq: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM rs_outbox", [], |r| {
                r.get(0)
            })?;
        let mut store = Store {
            conn,
            caches: Caches {
                coll_ids: HashMap::new(),
                next_seq: max_seq + 1,
                kick: None,
                author: None,
            },
        };
        let known: Vec<(String, i64)> = {
            let mut stmt = store.conn.prepare("SELECT name, id FROM rs_collections")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        store.caches.coll_ids.extend(known);
        store.ensure_collections(collections)?;
        Ok(store)
    }

    /// Gives every named collection its row (idempotent).
    pub fn ensure_collections<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let mut tx = self.begin()?;
        tx.ensure_collections(names)?;
        tx.commit()
    }

    /// Starts the one write transaction of a flow.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        let tx = self.conn.transaction()?;
        Ok(Tx {
            tx,
            caches: &mut self.caches,
            added: Vec::new(),
        })
    }

    /// Hands commits over to a checkpoint thread: the writer's own
    /// automatic checkpoint is kept only as a high fallback limit.
    pub(crate) fn checkpoint_elsewhere(&mut self, kick: checkpointer::Kick) -> Result<()> {
        self.set_wal_autocheckpoint(checkpointer::FALLBACK_PAGES)?;
        self.caches.kick = Some(kick);
        Ok(())
    }

    /// The writer's automatic checkpoint limit outside a pull, in pages.
    pub(crate) fn wal_limit(&self) -> i64 {
        if self.caches.kick.is_some() {
            checkpointer::FALLBACK_PAGES
        } else {
            schema::WAL_AUTOCHECKPOINT
        }
    }

    /// True when a checkpoint thread copies the log.
    pub(crate) fn checkpoints_elsewhere(&self) -> bool {
        self.caches.kick.is_some()
    }

    /// Sets the writer's page cache, in KiB.
    pub fn set_cache_kib(&self, kib: i64) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -kib)?;
        Ok(())
    }

    /// Sets how many write-ahead-log pages trigger an automatic checkpoint.
    pub fn set_wal_autocheckpoint(&self, pages: i64) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        Ok(())
    }

    /// Copies what it can of the write-ahead log into the database without
    /// waiting for readers or writers.
    pub fn checkpoint_passive(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

fn coll_id(caches: &Caches, name: &str) -> Result<i64> {
    caches
        .coll_ids
        .get(name)
        .copied()
        .ok_or_else(|| Error::UnknownCollection(name.to_string()))
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl<'a> Tx<'a> {
    /// Commits.
    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        self.caches.coll_ids.extend(self.added);
        if let Some(kick) = &self.caches.kick {
            kick.committed();
        }
        Ok(())
    }

    /// The collection's id.
    pub fn coll_id(&self, name: &str) -> Result<i64> {
        match self.added.iter().find(|(n, _)| n == name) {
            Some((_, id)) => Ok(*id),
            None => coll_id(self.caches, name),
        }
    }

    /// Gives every named collection its row (idempotent); their ids are
    /// cached when this transaction commits.
    pub fn ensure_collections<'n>(
        &mut self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<()> {
        for name in names {
            if self.coll_id(name).is_ok() {
                continue;
            }
            self.tx.execute(
                "INSERT OR IGNORE INTO rs_collections(name) VALUES (?1)",
                [name],
            )?;
            let id = coll_id_of(&self.tx, name)?;
            self.added.push((name.to_string(), id));
        }
        Ok(())
    }

    /// The next outbox sequence number (also used for group ids).
    pub fn next_seq(&mut self) -> i64 {
        let s = self.caches.next_seq;
        self.caches.next_seq += 1;
        s
    }

    /// Deletes every record, change, checkpoint, conflict and dead letter,
    /// and the picture cache's index (its files go at the cache's next run).
    pub fn wipe(&self) -> Result<()> {
        self.tx.execute_batch(
            "DELETE FROM rs_task_files; DELETE FROM rs_tasks;
             DELETE FROM rs_outbox; DELETE FROM rs_dead_letters; DELETE FROM rs_records;
             DELETE FROM rs_conflicts; DELETE FROM rs_pictures;
             UPDATE rs_collections SET checkpoint = 0;",
        )?;
        Ok(())
    }
}

/// Opens a read-only connection to the database at `path`, for reads that
/// must not wait behind the writer (WAL lets them run beside it). None for
/// an in-memory database, which only its one connection can see.
pub fn open_reader(path: &Path, key: Option<&DbKey>) -> Result<Option<Connection>> {
    if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
        return Ok(None);
    }
    let conn = crate::key::open_beside(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, key)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -4_000)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(Some(conn))
}

/// Outbox and log counts.
pub fn counts(conn: &Connection) -> Result<Counts> {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM rs_outbox WHERE parked IS NULL),
                (SELECT COUNT(*) FROM rs_outbox WHERE parked IS NOT NULL),
                (SELECT COUNT(*) FROM rs_dead_letters),
                (SELECT COUNT(*) FROM rs_conflicts),
                (SELECT COUNT(*) FROM rs_outbox o JOIN rs_records r ON r.local_id = o.local_id
                 WHERE o.parked IS NULL AND o.sent_counter IS NOT NULL
                   AND r.server_id IS NULL),
                (SELECT COUNT(*) FROM rs_tasks WHERE parked IS NULL AND kind = 'upload'),
                (SELECT COUNT(*) FROM rs_tasks WHERE parked IS NULL AND kind <> 'upload')",
        [],
        |r| {
            Ok(Counts {
                pending: r.get::<_, i64>(0)? as u64,
                parked: r.get::<_, i64>(1)? as u64,
                dead_letters: r.get::<_, i64>(2)? as u64,
                conflicts: r.get::<_, i64>(3)? as u64,
                in_doubt: r.get::<_, i64>(4)? as u64,
                uploads: r.get::<_, i64>(5)? as u64,
                disputes: r.get::<_, i64>(6)? as u64,
            })
        },
    )
    .map_err(Error::from)
}

/// True when the replica holds any record or pending change.
pub fn holds_data(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM rs_records) OR EXISTS (SELECT 1 FROM rs_collections WHERE checkpoint > 0)
         OR EXISTS (SELECT 1 FROM rs_tasks)",
        [],
        |r| r.get(0),
    )?)
}

/// A collection's id, read from the database (any connection).
pub fn coll_id_of(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM rs_collections WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::UnknownCollection(name.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::record::Op;
    use crate::store::{checkpoint, pending_in_order, pending_of, NewRow};

    fn memory() -> Db {
        let db = Db::open(Path::new(":memory:"), None).expect("opens");
        db.ensure_collections(["products"]).expect("a collection");
        db
    }

    fn insert(tx: &Tx<'_>, client_id: i64) -> Result<i64> {
        let coll = tx.coll_id("products")?;
        tx.insert_new_record(&NewRow {
            coll,
            server_id: None,
            client_id: Some(client_id),
            parent_client_id: None,
            row_version: None,
            deleted: false,
            data: "{}",
        })?
        .ok_or_else(|| Error::Database("taken".into()))
    }

    /// Invariant 2: a checkpoint only moves forward; a reset is explicit.
    #[test]
    fn a_checkpoint_never_goes_back() {
        let db = memory();
        let at = |db: &Db| {
            db.read(|conn| checkpoint(conn, coll_id_of(conn, "products")?))
                .expect("reads")
        };
        db.write(|tx| tx.advance_checkpoint(tx.coll_id("products")?, 10))
            .expect("moves");
        db.write(|tx| tx.advance_checkpoint(tx.coll_id("products")?, 5))
            .expect("a smaller one is no error");
        assert_eq!(at(&db), 10);
        db.write(|tx| tx.advance_checkpoint(tx.coll_id("products")?, 12))
            .expect("moves");
        assert_eq!(at(&db), 12);
        db.write(|tx| tx.reset_checkpoints()).expect("resets");
        assert_eq!(at(&db), 0);
    }

    /// Fields the server holds (an upload's answer) land in the record and
    /// in the base of a change pending over it, and make no change of
    /// their own: the outbox is as it was.
    #[test]
    fn server_fields_make_no_pending_change() {
        let db = memory();
        let (plain, edited) = db
            .write(|tx| {
                let plain = insert(tx, 1)?;
                let edited = insert(tx, 2)?;
                tx.insert_pending(edited, 1, Op::Update, Some(r#"{"title":"old"}"#))?;
                Ok((plain, edited))
            })
            .expect("writes");
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"url":"/f/1.jpg","pictureHash":"ab"}"#).expect("json");
        db.write(|tx| {
            assert!(tx.store_server_fields(plain, &fields)?);
            assert!(tx.store_server_fields(edited, &fields)?);
            assert!(!tx.store_server_fields(9_999, &fields)?, "a record gone");
            Ok(())
        })
        .expect("stores");
        let (row, pending_plain, pending_edited) = db
            .read(|conn| {
                Ok((
                    crate::store::row_by_local_id(conn, plain)?,
                    pending_of(conn, plain)?,
                    pending_of(conn, edited)?,
                ))
            })
            .expect("reads");
        let data = row.expect("the record").object().expect("an object");
        assert_eq!(data["url"], "/f/1.jpg");
        assert_eq!(data["pictureHash"], "ab");
        assert!(pending_plain.is_none(), "no pending change made");
        let pending = pending_edited.expect("still pending");
        assert_eq!((pending.op, pending.counter), (Op::Update, 1));
        let base: serde_json::Value =
            serde_json::from_str(pending.base.as_deref().expect("a base")).expect("json");
        assert_eq!(
            base,
            serde_json::json!({"title": "old", "url": "/f/1.jpg", "pictureHash": "ab"})
        );
    }

    /// A record has one pending change: later edits bump its counter and
    /// change its op, in its place in the outbox; the change leaves only
    /// when dropped.
    #[test]
    fn the_outbox_keeps_one_change_per_record() {
        let db = memory();
        let local = db
            .write(|tx| {
                let local = insert(tx, 7)?;
                tx.insert_pending(local, 1, Op::Create, None)?;
                Ok(local)
            })
            .expect("writes");
        db.write(|tx| tx.touch_pending(local, Op::Create))
            .expect("edits");
        db.write(|tx| tx.touch_pending(local, Op::Delete))
            .expect("edits");
        let (pending, queue) = db
            .read(|conn| Ok((pending_of(conn, local)?, pending_in_order(conn)?)))
            .expect("reads");
        let pending = pending.expect("pending");
        assert_eq!(
            (pending.op, pending.counter, pending.group_id),
            (Op::Delete, 3, 1)
        );
        assert_eq!(queue.len(), 1, "one change, not three");
        // Sent at counter 3, edited again: the send confirms only what it sent.
        db.write(|tx| tx.mark_sent(local, 3, "{}")).expect("marks");
        db.write(|tx| tx.touch_pending(local, Op::Delete))
            .expect("edits");
        let pending = db.read(|conn| pending_of(conn, local)).expect("reads");
        let pending = pending.expect("pending");
        assert_eq!((pending.counter, pending.sent_counter), (4, Some(3)));
        db.write(|tx| tx.drop_pending(local)).expect("drops");
        assert!(db
            .read(|conn| pending_of(conn, local))
            .expect("reads")
            .is_none());
    }

    /// A write that fails leaves nothing: its transaction rolls back, and a
    /// collection it registered is not cached.
    #[test]
    fn a_failed_write_leaves_nothing() {
        let db = memory();
        let failed: Result<()> = db.write(|tx| {
            insert(tx, 1)?;
            tx.ensure_collections(["orders"])?;
            Err(Error::Database("stop".into()))
        });
        assert!(failed.is_err());
        let (counts, orders) = db
            .read(|conn| Ok((counts(conn)?, coll_id_of(conn, "orders").is_err())))
            .expect("reads");
        assert_eq!(counts.pending, 0);
        assert!(orders, "the collection's row went with the transaction");
        assert!(!db.read(holds_data).expect("reads"));
        let cached = db
            .write(|tx| Ok(tx.coll_id("orders").is_err()))
            .expect("writes");
        assert!(cached, "and its id was never cached");
    }

    /// One writer: writes from two threads never overlap.
    #[test]
    fn one_writer_at_a_time() {
        let db = Arc::new(memory());
        let inside = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (db, inside) = (db.clone(), inside.clone());
                std::thread::spawn(move || {
                    for i in 0..20 {
                        db.write(|tx| {
                            assert!(!inside.swap(true, Ordering::SeqCst), "two writers at once");
                            insert(tx, 1_000 * (t + 1) + i)?;
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            inside.store(false, Ordering::SeqCst);
                            Ok(())
                        })
                        .expect("writes");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        let n = db
            .read(|conn| crate::store::count_rows(conn, coll_id_of(conn, "products")?, true))
            .expect("reads");
        assert_eq!(n, 40);
    }
}
