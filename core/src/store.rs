//! The local store: the one SQLite writer connection and every piece of SQL
//! that reads or writes records, the outbox, checkpoints, the conflict log,
//! the dead-letter queue, the sync log and the stored configuration. Functions
//! that write take a `&Transaction`; the flows in `local.rs`, `pull.rs` and
//! `push.rs` decide what goes in one transaction.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::key::DbKey;
use crate::schema;

/// Kept sync-log rows; older ones are dropped.
pub const SYNC_LOG_LIMIT: i64 = 1_000;

/// A record row as stored.
#[derive(Debug, Clone)]
pub struct Row {
    /// Local primary key.
    pub local_id: i64,
    /// Server id, once known.
    pub server_id: Option<i64>,
    /// Client id (null or 0 for records created elsewhere without one).
    pub client_id: Option<i64>,
    /// Last server rowVersion seen.
    pub row_version: Option<i64>,
    /// Tombstone.
    pub deleted: bool,
    /// The record's JSON text.
    pub data: String,
}

impl Row {
    /// The record as a JSON object.
    pub fn object(&self) -> Result<Map<String, Value>> {
        match serde_json::from_str(&self.data)? {
            Value::Object(m) => Ok(m),
            _ => Err(Error::Database(
                "a stored record is not a JSON object".into(),
            )),
        }
    }
}

/// An outbox row: the one pending change of a record.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The record.
    pub local_id: i64,
    /// Order of the first pending write.
    pub seq: i64,
    /// Write group: changes of one group are pushed together.
    pub group_id: i64,
    /// `create`, `update` or `delete`.
    pub op: Op,
    /// Bumped by every coalesced edit.
    pub counter: i64,
    /// `counter` when the change was last sent.
    pub sent_counter: Option<i64>,
    /// The record as last sent (JSON text), while `sent_counter` is set.
    pub sent_data: Option<String>,
    /// Last server version seen (JSON text), none for a create.
    pub base: Option<String>,
    /// Dead letter holding this change, if parked.
    pub parked: Option<i64>,
}

/// Kind of pending change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A record the server has not confirmed yet.
    Create,
    /// An edit of a record the server has.
    Update,
    /// A logical delete.
    Delete,
}

impl Op {
    /// `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Op> {
        match s {
            "create" => Ok(Op::Create),
            "update" => Ok(Op::Update),
            "delete" => Ok(Op::Delete),
            other => Err(Error::Database(format!("unknown outbox op `{other}`"))),
        }
    }
}

impl rusqlite::types::FromSql for Op {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Op::parse(s).map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// A conflict-log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConflictEntry {
    /// Entry id.
    pub id: i64,
    /// Collection.
    pub collection: String,
    /// Server id of the record.
    pub server_id: Option<i64>,
    /// Client id of the record.
    pub client_id: Option<i64>,
    /// The base version (last server version seen), if any.
    pub base: Option<Value>,
    /// The local version that lost something.
    pub local: Option<Value>,
    /// The server version.
    pub server: Option<Value>,
    /// Fields whose local value was discarded or overridden.
    pub fields: Vec<String>,
    /// How it was resolved (`server_wins`, `field_merge`, ...).
    pub resolution: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A change kept in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadChange {
    /// Collection.
    pub collection: String,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id.
    pub client_id: Option<i64>,
    /// The change.
    pub op: Op,
    /// The record as it would be sent.
    pub record: Value,
}

/// A dead letter: a change group the server rejected, with the reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    /// Entry id.
    pub id: i64,
    /// Mahak error code (2001, 3001, or another).
    pub code: i64,
    /// The server's message.
    pub message: String,
    /// The collection the server named.
    pub entity: Option<String>,
    /// The field the server named.
    pub field: Option<String>,
    /// Tracking id of the rejecting response.
    pub tracking_id: Option<String>,
    /// When it was parked (RFC 3339).
    pub parked_at: String,
    /// The changes of the group.
    pub changes: Vec<DeadChange>,
    /// The upload or dispute parked in it, if it holds one instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<crate::tasks::TaskInfo>,
}

/// A sync-log row: one HTTP call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncLogEntry {
    /// Row id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Endpoint, e.g. `GetAllDataV2`.
    pub endpoint: String,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The response's tracking id.
    pub tracking_id: Option<String>,
    /// The error, if the call failed.
    pub error: Option<String>,
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

/// A record row to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    /// Collection id.
    pub coll: i64,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any.
    pub client_id: Option<i64>,
    /// The parent's client id, for children.
    pub parent_client_id: Option<i64>,
    /// Server rowVersion, if known.
    pub row_version: Option<i64>,
    /// Tombstone.
    pub deleted: bool,
    /// The record's JSON text.
    pub data: &'a str,
}

impl NewRow<'_> {
    pub(crate) fn params(&self) -> impl rusqlite::Params + '_ {
        (
            self.coll,
            self.server_id,
            self.client_id,
            self.parent_client_id,
            self.row_version,
            self.deleted,
            self.data,
        )
    }
}

/// Caches that live beside the connection: collection ids and the next
/// outbox sequence number.
pub struct Caches {
    coll_ids: HashMap<String, i64>,
    next_seq: i64,
    /// Told of each commit (the engine's checkpoint thread), if any.
    kick: Option<crate::checkpointer::Kick>,
}

/// The store: one connection, used by one thread at a time (the engine holds
/// it behind a mutex).
pub struct Store {
    conn: Connection,
    caches: Caches,
}

/// One write transaction with the caches it may use.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    caches: &'a mut Caches,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_opt(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

const ROW_COLUMNS: &str = "local_id, server_id, client_id, row_version, deleted, data";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        local_id: r.get(0)?,
        server_id: r.get(1)?,
        client_id: r.get(2)?,
        row_version: r.get(3)?,
        deleted: r.get(4)?,
        data: r.get(5)?,
    })
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
            let probe = open_beside(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, key)?;
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
            },
        };
        store.ensure_collections(collections)?;
        Ok(store)
    }

    /// Gives every named collection its row (idempotent).
    pub fn ensure_collections<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for name in names {
            tx.execute(
                "INSERT OR IGNORE INTO rs_collections(name) VALUES (?1)",
                [name],
            )?;
        }
        tx.commit()?;
        let mut stmt = self.conn.prepare("SELECT name, id FROM rs_collections")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, id) = row?;
            self.caches.coll_ids.insert(name, id);
        }
        Ok(())
    }

    /// Starts the one write transaction of a flow.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        let tx = self.conn.transaction()?;
        Ok(Tx {
            tx,
            caches: &mut self.caches,
        })
    }

    /// Hands commits over to a checkpoint thread: the writer's own
    /// automatic checkpoint is kept only as a high fallback limit.
    pub(crate) fn checkpoint_elsewhere(&mut self, kick: crate::checkpointer::Kick) -> Result<()> {
        self.set_wal_autocheckpoint(crate::checkpointer::FALLBACK_PAGES)?;
        self.caches.kick = Some(kick);
        Ok(())
    }

    /// The writer's automatic checkpoint limit outside a pull, in pages.
    pub(crate) fn wal_limit(&self) -> i64 {
        if self.caches.kick.is_some() {
            crate::checkpointer::FALLBACK_PAGES
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
        if let Some(kick) = &self.caches.kick {
            kick.committed();
        }
        Ok(())
    }

    /// The collection's id.
    pub fn coll_id(&self, name: &str) -> Result<i64> {
        coll_id(self.caches, name)
    }

    /// The next outbox sequence number (also used for group ids).
    pub fn next_seq(&mut self) -> i64 {
        let s = self.caches.next_seq;
        self.caches.next_seq += 1;
        s
    }

    // ----- records -------------------------------------------------------

    /// Inserts a new record unless its client id is taken (`None` then):
    /// the unique index answers, without a lookup first. The pull's
    /// insert-unless-present statement.
    pub fn insert_new_record(&self, row: &NewRow<'_>) -> Result<Option<i64>> {
        let inserted = self.insert_pulled_statement()?.execute(row.params())? == 1;
        Ok(inserted.then(|| self.tx.last_insert_rowid()))
    }

    /// The statement that inserts a pulled record unless a record with its
    /// server id or client id already exists (one row changed when
    /// inserted). Prepared once per page: this is the first sync's hot path.
    pub fn insert_pulled_statement(&self) -> Result<rusqlite::CachedStatement<'_>> {
        Ok(self.tx.prepare_cached(
            "INSERT INTO rs_records(coll, server_id, client_id, parent_client_id, row_version, deleted, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )?)
    }

    /// Rewrites the record of `coll` with server id `sid` with a pulled
    /// version when that is all there is to do: its version is older than
    /// `row_version` (or unknown) and no local change is pending over it.
    /// True when it did; otherwise nothing was written and the caller looks
    /// closer. One statement where a probe and an update took two.
    pub fn update_pulled_plain(
        &self,
        coll: i64,
        sid: i64,
        row_version: i64,
        deleted: bool,
        data: &str,
    ) -> Result<bool> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE rs_records SET row_version = ?3, deleted = ?4, data = ?5
                 WHERE coll = ?1 AND server_id = ?2
                   AND (row_version IS NULL OR row_version < ?3)
                   AND NOT EXISTS (SELECT 1 FROM rs_outbox o WHERE o.local_id = rs_records.local_id)",
            )?
            .execute(params![coll, sid, row_version, deleted, data])?;
        Ok(changed == 1)
    }

    /// Rewrites a pulled record whose server id is unchanged (so its index
    /// entry is not rewritten).
    pub fn update_pulled(
        &self,
        local_id: i64,
        row_version: i64,
        deleted: bool,
        data: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE rs_records SET row_version = ?2, deleted = ?3, data = ?4 WHERE local_id = ?1")?
            .execute(params![local_id, row_version, deleted, data])?;
        Ok(())
    }

    /// Rewrites a record row.
    pub fn update_record(
        &self,
        local_id: i64,
        server_id: Option<i64>,
        row_version: Option<i64>,
        deleted: bool,
        data: &str,
    ) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_records SET server_id = ?2, row_version = ?3, deleted = ?4, data = ?5 WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, server_id, row_version, deleted, data])?;
        Ok(())
    }

    /// Rewrites only a record's data and tombstone flag (a local write).
    pub fn update_record_data(&self, local_id: i64, deleted: bool, data: &str) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE rs_records SET deleted = ?2, data = ?3 WHERE local_id = ?1")?;
        stmt.execute(params![local_id, deleted, data])?;
        Ok(())
    }

    /// Removes a record row and its pending change (a create that never
    /// reached the server, then deleted or discarded).
    pub fn remove_record(&self, local_id: i64) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM rs_outbox WHERE local_id = ?1")?
            .execute([local_id])?;
        self.tx
            .prepare_cached("DELETE FROM rs_records WHERE local_id = ?1")?
            .execute([local_id])?;
        Ok(())
    }

    /// Sets the parent's server id on children that point at it only by its
    /// client id (after the parent's create was confirmed).
    pub fn link_children(
        &self,
        child_coll: i64,
        parent_field: &str,
        parent_client_id: i64,
        parent_id: i64,
    ) -> Result<()> {
        let path = format!("$.\"{parent_field}\"");
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_records SET data = json_set(data, ?3, ?4)
             WHERE coll = ?1 AND parent_client_id = ?2 AND json_extract(data, ?3) IS NULL",
        )?;
        stmt.execute(params![child_coll, parent_client_id, path, parent_id])?;
        Ok(())
    }

    /// Local children of a parent (by the parent's client id) that are pending
    /// creates: they cannot exist without it.
    pub fn orphaned_creates(&self, child_coll: i64, parent_client_id: i64) -> Result<Vec<i64>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT r.local_id FROM rs_records r JOIN rs_outbox o ON o.local_id = r.local_id
             WHERE r.coll = ?1 AND r.parent_client_id = ?2 AND r.server_id IS NULL AND o.op = 'create'",
        )?;
        let rows = stmt.query_map(params![child_coll, parent_client_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ----- outbox --------------------------------------------------------

    /// Inserts a new pending change.
    pub fn insert_pending(
        &mut self,
        local_id: i64,
        group_id: i64,
        op: Op,
        base: Option<&str>,
    ) -> Result<()> {
        let seq = self.next_seq();
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rs_outbox(local_id, seq, group_id, op, counter, sent_counter, base, parked, changed_at)
             VALUES (?1, ?2, ?3, ?4, 1, NULL, ?5, NULL, ?6)",
        )?;
        stmt.execute(params![local_id, seq, group_id, op.as_str(), base, now()])?;
        Ok(())
    }

    /// Records a further edit of a pending change: its op and a bumped counter.
    pub fn touch_pending(&self, local_id: i64, op: Op) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET op = ?2, counter = counter + 1, changed_at = ?3 WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, op.as_str(), now()])?;
        Ok(())
    }

    /// After a conflict resolution that leaves a change to push: new op and
    /// base, a bumped counter, not in flight.
    pub fn rebase_pending(&self, local_id: i64, op: Op, base: &str) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET op = ?2, base = ?3, counter = counter + 1, sent_counter = NULL, changed_at = ?4
             WHERE local_id = ?1",
        )?;
        stmt.execute(params![local_id, op.as_str(), base, now()])?;
        Ok(())
    }

    /// Drops a pending change (confirmed or resolved), and the dead letter it
    /// was parked in once that holds nothing more.
    pub fn drop_pending(&self, local_id: i64) -> Result<()> {
        let parked: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT parked FROM rs_outbox WHERE local_id = ?1")?
            .query_row([local_id], |r| r.get(0))
            .optional()?;
        self.tx
            .prepare_cached("DELETE FROM rs_outbox WHERE local_id = ?1")?
            .execute([local_id])?;
        if let Some(Some(dl)) = parked {
            self.tx.execute(
                "DELETE FROM rs_dead_letters WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM rs_outbox WHERE parked = ?1)",
                [dl],
            )?;
        }
        Ok(())
    }

    /// Marks changes as sent with the counter they had and the record as
    /// it went out.
    pub fn mark_sent(&self, local_id: i64, counter: i64, data: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_outbox SET sent_counter = ?2, sent_data = ?3 WHERE local_id = ?1",
            )?
            .execute(params![local_id, counter, data])?;
        Ok(())
    }

    /// Marks a change as not sent: an in-doubt create that a pull showed the
    /// server does not have, safe to send again.
    pub fn clear_sent(&self, local_id: i64) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE rs_outbox SET sent_counter = NULL WHERE local_id = ?1")?
            .execute([local_id])?;
        Ok(())
    }

    /// Removes a stored configuration value.
    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM rs_meta WHERE key = ?1", [key])?;
        Ok(())
    }

    /// A confirmed send that a later edit overtook: the record now exists on
    /// the server as `base`; the newer edit stays pending.
    pub fn confirm_overtaken(&self, local_id: i64, base: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_outbox SET op = CASE op WHEN 'create' THEN 'update' ELSE op END,
                 base = ?2, sent_counter = NULL WHERE local_id = ?1",
            )?
            .execute(params![local_id, base])?;
        Ok(())
    }

    // ----- dead letters --------------------------------------------------

    /// Parks changes in a new dead letter.
    pub fn park(
        &self,
        local_ids: &[i64],
        code: i64,
        message: &str,
        entity: Option<&str>,
        field: Option<&str>,
        tracking_id: Option<&str>,
    ) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO rs_dead_letters(code, message, entity, field, tracking_id, parked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![code, message, entity, field, tracking_id, now()],
        )?;
        let id = self.tx.last_insert_rowid();
        let mut stmt = self.tx.prepare_cached(
            "UPDATE rs_outbox SET parked = ?2, sent_counter = NULL WHERE local_id = ?1",
        )?;
        for &l in local_ids {
            stmt.execute(params![l, id])?;
        }
        Ok(id)
    }

    /// Returns a dead letter's changes to the outbox; false if no such entry.
    pub fn unpark(&self, id: i64) -> Result<bool> {
        self.tx.execute(
            "UPDATE rs_outbox SET parked = NULL, sent_counter = NULL WHERE parked = ?1",
            [id],
        )?;
        // A retried upload or dispute is sent again: the app decided.
        self.tx.execute(
            "UPDATE rs_tasks SET parked = NULL, sent = 0, last_error = NULL WHERE parked = ?1",
            [id],
        )?;
        Ok(self
            .tx
            .execute("DELETE FROM rs_dead_letters WHERE id = ?1", [id])?
            == 1)
    }

    /// Deletes a dead-letter row (its changes already handled).
    pub fn delete_dead_letter(&self, id: i64) -> Result<bool> {
        // Uploads and disputes parked in it go with it (their files too).
        self.tx
            .execute("DELETE FROM rs_tasks WHERE parked = ?1", [id])?;
        Ok(self
            .tx
            .execute("DELETE FROM rs_dead_letters WHERE id = ?1", [id])?
            == 1)
    }

    // ----- checkpoints, conflicts, log, meta -----------------------------

    /// Moves a collection's checkpoint forward (never backwards).
    pub fn advance_checkpoint(&self, coll: i64, to: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE rs_collections SET checkpoint = MAX(checkpoint, ?2) WHERE id = ?1",
            )?
            .execute(params![coll, to])?;
        Ok(())
    }

    /// Resets one collection's checkpoint to 0 (its records are pulled
    /// again from the start; data kept).
    pub fn reset_checkpoint(&self, coll: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE rs_collections SET checkpoint = 0 WHERE id = ?1",
            [coll],
        )?;
        Ok(())
    }

    /// Resets every checkpoint to 0 (forget the server's state; data kept).
    pub fn reset_checkpoints(&self) -> Result<()> {
        self.tx
            .execute("UPDATE rs_collections SET checkpoint = 0", [])?;
        Ok(())
    }

    /// Appends a conflict-log entry.
    #[allow(clippy::too_many_arguments)]
    pub fn log_conflict(
        &self,
        collection: &str,
        server_id: Option<i64>,
        client_id: Option<i64>,
        base: Option<&str>,
        local: Option<&str>,
        server: Option<&str>,
        fields: &[String],
        resolution: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO rs_conflicts(collection, server_id, client_id, base, local, server, fields, resolution, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                collection,
                server_id,
                client_id,
                base,
                local,
                server,
                serde_json::to_string(fields)?,
                resolution,
                now()
            ])?;
        Ok(())
    }

    /// Appends sync-log rows and drops the oldest beyond the limit.
    pub fn append_sync_log(&self, entries: &[crate::api::client::CallRecord]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO rs_sync_log(at, endpoint, status, duration_ms, tracking_id, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in entries {
            stmt.execute(params![
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.endpoint,
                e.status,
                e.duration_ms as i64,
                e.tracking_id,
                e.error
            ])?;
        }
        self.tx.execute(
            "DELETE FROM rs_sync_log WHERE id <= (SELECT MAX(id) FROM rs_sync_log) - ?1",
            [SYNC_LOG_LIMIT],
        )?;
        Ok(())
    }

    /// Sets a stored configuration value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO rs_meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Deletes every record, change, checkpoint, conflict and dead letter.
    pub fn wipe(&self) -> Result<()> {
        self.tx.execute_batch(
            "DELETE FROM rs_task_files; DELETE FROM rs_tasks;
             DELETE FROM rs_outbox; DELETE FROM rs_dead_letters; DELETE FROM rs_records;
             DELETE FROM rs_conflicts; UPDATE rs_collections SET checkpoint = 0;",
        )?;
        Ok(())
    }
}

// ----- reads (any connection or transaction) ------------------------------

/// Opens a read-only connection to the database at `path`, for reads that
/// must not wait behind the writer (WAL lets them run beside it). None for
/// an in-memory database, which only its one connection can see.
pub fn open_reader(path: &Path, key: Option<&DbKey>) -> Result<Option<Connection>> {
    if path.as_os_str() == ":memory:" || path.as_os_str().is_empty() {
        return Ok(None);
    }
    let conn = open_beside(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, key)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -4_000)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(Some(conn))
}

/// A connection to the replica at `path` beside the writer's (`flags` plus
/// no mutex: each is used by one thread at a time), keyed with `key` for an
/// encrypted replica.
pub(crate) fn open_beside(
    path: &Path,
    flags: rusqlite::OpenFlags,
    key: Option<&DbKey>,
) -> Result<Connection> {
    let conn =
        Connection::open_with_flags(path, flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    if let Some(key) = key {
        crate::key::apply(&conn, key)?;
    }
    Ok(conn)
}

/// A collection's id, read from the database (any connection).
pub fn coll_id_of(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM rs_collections WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::UnknownCollection(name.to_string()))
}

/// The record of `coll` with server id `id`.
pub fn row_by_server_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND server_id = ?2"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_row).optional()?)
}

/// What a pull needs to know of a local record before touching it.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Local id.
    pub local_id: i64,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Last server rowVersion seen.
    pub row_version: Option<i64>,
    /// It has a pending change (parked or not).
    pub pending: bool,
}

const PROBE_SQL: &str = "SELECT r.local_id, r.server_id, r.row_version,
        EXISTS (SELECT 1 FROM rs_outbox o WHERE o.local_id = r.local_id)
    FROM rs_records r";

fn read_probe(r: &rusqlite::Row<'_>) -> rusqlite::Result<Probe> {
    Ok(Probe {
        local_id: r.get(0)?,
        server_id: r.get(1)?,
        row_version: r.get(2)?,
        pending: r.get(3)?,
    })
}

/// Probes the record of `coll` with server id `id`.
pub fn probe_by_server_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Probe>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{PROBE_SQL} WHERE r.coll = ?1 AND r.server_id = ?2"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_probe).optional()?)
}

/// Probes the record of `coll` with client id `id` (never matches 0).
pub fn probe_by_client_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Probe>> {
    if id == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "{PROBE_SQL} WHERE r.coll = ?1 AND r.client_id = ?2 AND r.client_id <> 0"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_probe).optional()?)
}

/// The record of `coll` with client id `id` (never matches 0).
pub fn row_by_client_id(conn: &Connection, coll: i64, id: i64) -> Result<Option<Row>> {
    if id == 0 {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND client_id = ?2 AND client_id <> 0"
    ))?;
    Ok(stmt.query_row(params![coll, id], read_row).optional()?)
}

/// The record by local id.
pub fn row_by_local_id(conn: &Connection, local_id: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE local_id = ?1"
    ))?;
    Ok(stmt.query_row([local_id], read_row).optional()?)
}

/// A page of a collection in local order.
pub fn list_rows(
    conn: &Connection,
    coll: i64,
    include_deleted: bool,
    after: i64,
    offset: u64,
    limit: u64,
) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM rs_records WHERE coll = ?1 AND local_id > ?2 AND (?3 OR deleted = 0)
         ORDER BY local_id LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            coll,
            after,
            include_deleted,
            limit.min(i64::MAX as u64) as i64,
            offset.min(i64::MAX as u64) as i64
        ],
        read_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Number of records in a collection.
pub fn count_rows(conn: &Connection, coll: i64, include_deleted: bool) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM rs_records WHERE coll = ?1 AND (?2 OR deleted = 0)")?
        .query_row(params![coll, include_deleted], |r| r.get(0))?;
    Ok(n as u64)
}

const PENDING_COLUMNS: &str =
    "local_id, seq, group_id, op, counter, sent_counter, base, parked, sent_data";

fn read_pending(r: &rusqlite::Row<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending {
        local_id: r.get(0)?,
        seq: r.get(1)?,
        group_id: r.get(2)?,
        op: r.get(3)?,
        counter: r.get(4)?,
        sent_counter: r.get(5)?,
        base: r.get(6)?,
        parked: r.get(7)?,
        sent_data: r.get(8)?,
    })
}

/// The pending change of a record, if any.
pub fn pending_of(conn: &Connection, local_id: i64) -> Result<Option<Pending>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PENDING_COLUMNS} FROM rs_outbox WHERE local_id = ?1"
    ))?;
    Ok(stmt.query_row([local_id], read_pending).optional()?)
}

/// Pending (not parked) changes in push order, with their collection names.
pub fn pending_in_order(conn: &Connection) -> Result<Vec<(String, Pending)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.local_id, o.seq, o.group_id, o.op, o.counter, o.sent_counter, o.base, o.parked,
         NULL, c.name
         FROM rs_outbox o JOIN rs_records r ON r.local_id = o.local_id JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked IS NULL ORDER BY o.seq",
    )?;
    // The last sent record is not read here (`sent_data` is NULL): only a
    // pull needs it, for one record.
    let rows = stmt.query_map([], |r| Ok((read_pending(r)?, r.get::<_, String>(9)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (p, name) = row?;
        out.push((name, p));
    }
    Ok(out)
}

/// True when the record's pending change is parked.
pub fn is_parked(conn: &Connection, local_id: i64) -> Result<bool> {
    let parked: Option<Option<i64>> = conn
        .prepare_cached("SELECT parked FROM rs_outbox WHERE local_id = ?1")?
        .query_row([local_id], |r| r.get(0))
        .optional()?;
    Ok(matches!(parked, Some(Some(_))))
}

/// Every collection's checkpoint.
pub fn checkpoints(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT name, checkpoint FROM rs_collections ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A collection's checkpoint.
pub fn checkpoint(conn: &Connection, coll: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT checkpoint FROM rs_collections WHERE id = ?1")?
        .query_row([coll], |r| r.get(0))?)
}

/// The conflict log, oldest first.
pub fn conflicts(conn: &Connection) -> Result<Vec<ConflictEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, collection, server_id, client_id, base, local, server, fields, resolution, at
         FROM rs_conflicts ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, String>(7)?,
            r.get::<_, String>(8)?,
            r.get::<_, String>(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, collection, server_id, client_id, base, local, server, fields, resolution, at) =
            row?;
        out.push(ConflictEntry {
            id,
            collection,
            server_id,
            client_id,
            base: parse_opt(base),
            local: parse_opt(local),
            server: parse_opt(server),
            fields: serde_json::from_str(&fields).unwrap_or_default(),
            resolution,
            at,
        });
    }
    Ok(out)
}

/// Dead letters with their changes, oldest first.
pub fn dead_letters(conn: &Connection) -> Result<Vec<DeadLetter>> {
    let mut stmt = conn.prepare(
        "SELECT id, code, message, entity, field, tracking_id, parked_at FROM rs_dead_letters ORDER BY id",
    )?;
    let letters = stmt
        .query_map([], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                code: r.get(1)?,
                message: r.get(2)?,
                entity: r.get(3)?,
                field: r.get(4)?,
                tracking_id: r.get(5)?,
                parked_at: r.get(6)?,
                changes: Vec::new(),
                tasks: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut changes = conn.prepare(
        "SELECT c.name, r.server_id, r.client_id, o.op, r.data FROM rs_outbox o
         JOIN rs_records r ON r.local_id = o.local_id JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked = ?1 ORDER BY o.seq",
    )?;
    let mut out = Vec::with_capacity(letters.len());
    for mut letter in letters {
        let rows = changes.query_map([letter.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (collection, server_id, client_id, op, data) = row?;
            letter.changes.push(DeadChange {
                collection,
                server_id,
                client_id,
                op: Op::parse(&op)?,
                record: serde_json::from_str(&data)?,
            });
        }
        letter.tasks = crate::tasks::list_parked(conn, letter.id)?;
        out.push(letter);
    }
    Ok(out)
}

/// The local ids parked in a dead letter.
pub fn parked_in(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT local_id FROM rs_outbox WHERE parked = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The newest sync-log rows, newest first.
pub fn sync_log(conn: &Connection, limit: u32) -> Result<Vec<SyncLogEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, at, endpoint, status, duration_ms, tracking_id, error FROM rs_sync_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(SyncLogEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            endpoint: r.get(2)?,
            status: r.get(3)?,
            duration_ms: r.get::<_, i64>(4)?.max(0) as u64,
            tracking_id: r.get(5)?,
            error: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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

/// The creates in doubt (sent, never confirmed, not parked), with their
/// collection, in outbox order. A record with no server id was created
/// here, whatever its change has become since (a delete, after a create
/// whose answer was lost, is one too).
pub fn in_doubt(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.name, o.local_id FROM rs_outbox o
         JOIN rs_records r ON r.local_id = o.local_id
         JOIN rs_collections c ON c.id = r.coll
         WHERE o.parked IS NULL AND o.sent_counter IS NOT NULL
           AND r.server_id IS NULL
         ORDER BY o.seq",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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

/// A stored configuration value.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM rs_meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// Clears the conflict log; returns how many entries were removed.
pub fn clear_conflicts(conn: &Connection) -> Result<u64> {
    Ok(conn.execute("DELETE FROM rs_conflicts", [])? as u64)
}
