//! The task queue: what the app asks the server beside record changes.
//!
//! - **Uploads**: a file (a photo of a signed invoice, of a shop front) for
//!   one record. The file is copied into the replica itself, in the same
//!   transaction as its queue entry: a kill mid-copy leaves no half entry,
//!   the app may delete its own copy at once, and an encrypted replica
//!   keeps the file encrypted. An upload waits until its record has a
//!   server id (its own save went first), is retried with the usual
//!   backoff, and is parked in the dead-letter queue with the server's
//!   words if refused.
//! - **Disputes** (`SolveOrderDispute`, `SolveDispute`): queued like any
//!   change, durable, never sent twice after a lost answer, parked with the
//!   server's words if refused. [`Engine::reconcile_dispute`] builds the
//!   `SolveDispute` items of a collection from the replica, as the vendor's
//!   plugin does to repair a diverged replica.
//!
//! The bytes of each call are the dialect's (`api/dialect/tasks.rs`); the
//! sending is in `sync/tasks.rs`.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};

use crate::catalogue::Dialect;
use crate::engine::{lock, read, Engine};
use crate::error::{Error, Result};
use crate::local::{self, RecordId};
use crate::store;

/// Default largest file an upload may have: 10 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;

/// Records per `SolveDispute` request that [`Engine::reconcile_dispute`]
/// builds (mahak dialect).
pub const RECONCILE_ITEMS_PER_REQUEST: usize = 2_000;

/// Where the bytes of an upload come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadSource {
    /// A file the engine copies (the app may delete it afterwards).
    Path(PathBuf),
    /// The bytes themselves.
    Bytes(Vec<u8>),
}

/// One order of a `SolveOrderDispute`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OrderDisputeItem {
    /// The order's server id.
    pub order_id: i64,
    /// The resolution code (mahak dialect).
    pub code: i64,
    /// `accept`, `reject` or `adjust` (documented dialect).
    pub resolution: String,
    /// Why (documented dialect).
    pub reason: String,
    /// The amount of an `adjust` (documented dialect).
    pub amount: f64,
}

/// One record of a `SolveDispute`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RecordDisputeItem {
    /// The record's server id.
    pub id: i64,
    /// The row version held for it (`rw`).
    pub row_version: i64,
    /// The resolution (documented dialect; `reconcile` from
    /// [`Engine::reconcile_dispute`]).
    pub resolution: String,
    /// Why (documented dialect).
    pub reason: String,
}

/// What a task sends, as kept in the queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Spec {
    Upload {
        collection: String,
        /// The record's ids when queued: the row found at send time must
        /// still be this one.
        server_id: Option<i64>,
        client_id: Option<i64>,
        file_name: String,
        content_type: String,
    },
    OrderDispute {
        items: Vec<OrderDisputeItem>,
    },
    Dispute {
        collection: String,
        items: Vec<RecordDisputeItem>,
    },
}

/// The kind of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A file for a record (`/Sync/Upload`).
    Upload,
    /// `SolveOrderDispute`.
    OrderDispute,
    /// `SolveDispute`.
    Dispute,
}

impl TaskKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskKind::Upload => "upload",
            TaskKind::OrderDispute => "order_dispute",
            TaskKind::Dispute => "dispute",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "upload" => Ok(TaskKind::Upload),
            "order_dispute" => Ok(TaskKind::OrderDispute),
            "dispute" => Ok(TaskKind::Dispute),
            other => Err(Error::Database(format!("unknown task kind `{other}`"))),
        }
    }
}

/// Where a task stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// An upload whose record has no server id yet: it goes after the
    /// record's own save.
    WaitingForRecord,
    /// Goes at the next sync.
    Queued,
    /// Sent, and the answer never came (a kill, a lost answer): a dispute
    /// to the real server is then parked rather than sent twice; anything
    /// else is sent again, safely.
    InDoubt,
    /// Parked in the dead-letter queue.
    Parked {
        /// The dead letter.
        dead_letter: i64,
    },
}

/// A queued upload or dispute, as `status`, `uploads` and `tasks` list it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskInfo {
    /// The task's id in the queue.
    pub id: i64,
    /// What it is.
    pub kind: TaskKind,
    /// The client-generated request id (the documented dialect's
    /// deduplication key).
    pub request_id: String,
    /// The record's (upload) or records' (dispute) collection.
    pub collection: Option<String>,
    /// The upload's record, by the id it has now.
    pub record: Option<RecordId>,
    /// The upload's file name.
    pub file_name: Option<String>,
    /// The upload's size in bytes.
    pub size: u64,
    /// Orders or records a dispute names.
    pub items: u64,
    /// Where it stands.
    pub state: TaskState,
    /// Times it was sent.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
}

/// A new request id: unique per replica (the queue enforces it), random
/// enough to be unique on the server.
fn request_id() -> String {
    format!(
        "rs-{:x}-{:016x}",
        chrono::Utc::now().timestamp_millis(),
        fastrand::u64(..)
    )
}

/// A file name the server can take: a name, not a path, printable, at most
/// 255 bytes.
fn check_file_name(collection: &str, name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(collection, "file_name", why));
    if name.trim().is_empty() {
        return bad("a file name is needed");
    }
    if name.len() > 255 {
        return bad("a file name has at most 255 bytes");
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
    {
        return bad("a file name has no path separator, quote or control character");
    }
    if name == "." || name == ".." {
        return bad("not a file name");
    }
    Ok(())
}

/// The content type of a file, by its extension.
fn content_type_of(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn insert_task(
    tx: &store::Tx<'_>,
    kind: TaskKind,
    spec: &Spec,
    local_id: Option<i64>,
    size: u64,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO rs_tasks(kind, request_id, spec, local_id, size, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            kind.as_str(),
            request_id(),
            serde_json::to_string(spec)?,
            local_id,
            i64::try_from(size).unwrap_or(i64::MAX),
            store::now()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Engine {
    /// Queues a file for record `id` of `collection` (`/Sync/Upload`). The
    /// bytes are copied into the replica now, in one transaction, so the
    /// app may delete its copy; the upload is sent by a sync once the
    /// record has a server id. A file over `Settings::max_upload_bytes` is
    /// `FileTooLarge`; an unknown record is `NotFound`; nothing is queued
    /// then. Returns the upload's id.
    pub fn queue_upload(
        &self,
        collection: &str,
        id: RecordId,
        source: UploadSource,
        file_name: &str,
    ) -> Result<i64> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        check_file_name(collection, file_name)?;
        let limit = self.settings()?.max_upload_bytes;
        let data = match source {
            UploadSource::Bytes(b) => b,
            UploadSource::Path(path) => {
                let cannot = |e: std::io::Error| {
                    Error::invalid(
                        collection,
                        "file",
                        format!("cannot read `{}`: {e}", path.display()),
                    )
                };
                let size = std::fs::metadata(&path).map_err(cannot)?.len();
                if size > limit {
                    return Err(Error::FileTooLarge { size, limit });
                }
                std::fs::read(&path).map_err(cannot)?
            }
        };
        let size = data.len() as u64;
        if size > limit {
            return Err(Error::FileTooLarge { size, limit });
        }
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        let coll = tx.coll_id(&def.name)?;
        let row = match local::find(&tx, coll, id)? {
            Some(row) if !row.deleted => row,
            _ => {
                return Err(Error::NotFound {
                    collection: collection.to_string(),
                    id: id.to_string(),
                })
            }
        };
        let spec = Spec::Upload {
            collection: def.name.clone(),
            server_id: row.server_id,
            client_id: row.client_id.filter(|&c| c != 0),
            file_name: file_name.to_string(),
            content_type: content_type_of(file_name).to_string(),
        };
        let task = insert_task(&tx, TaskKind::Upload, &spec, Some(row.local_id), size)?;
        tx.execute(
            "INSERT INTO rs_task_files(task, data) VALUES (?1, ?2)",
            params![task, data],
        )?;
        tx.commit()?;
        Ok(task)
    }

    /// Queues `SolveOrderDispute` for `items` (orders by server id). The
    /// real server takes them in one request; the documented dialect in one
    /// request per order. Returns the queued tasks' ids.
    pub fn solve_order_dispute(&self, items: Vec<OrderDisputeItem>) -> Result<Vec<i64>> {
        let dialect = read(&self.settings)?.dialect;
        if items.is_empty() {
            return Err(Error::invalid("orders", "items", "no order to dispute"));
        }
        for item in &items {
            if item.order_id <= 0 {
                return Err(Error::invalid(
                    "orders",
                    "order_id",
                    format!("`{}` is not a server id", item.order_id),
                ));
            }
            if dialect == Dialect::Documented
                && !matches!(item.resolution.as_str(), "accept" | "reject" | "adjust")
            {
                return Err(Error::invalid(
                    "orders",
                    "resolution",
                    format!(
                        "`{}`: one of accept, reject or adjust",
                        item.resolution.escape_debug()
                    ),
                ));
            }
            if !item.amount.is_finite() {
                return Err(Error::invalid("orders", "amount", "not a finite number"));
            }
        }
        let groups: Vec<Vec<OrderDisputeItem>> = match dialect {
            Dialect::Mahak => vec![items],
            Dialect::Documented => items.into_iter().map(|i| vec![i]).collect(),
        };
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        let mut ids = Vec::with_capacity(groups.len());
        for items in groups {
            let spec = Spec::OrderDispute { items };
            ids.push(insert_task(&tx, TaskKind::OrderDispute, &spec, None, 0)?);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Queues `SolveDispute` for records of `collection` (by server id and
    /// row version). The real server takes them in one request; the
    /// documented dialect in one request per record. Returns the queued
    /// tasks' ids.
    pub fn solve_dispute(
        &self,
        collection: &str,
        items: Vec<RecordDisputeItem>,
    ) -> Result<Vec<i64>> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        if items.is_empty() {
            return Err(Error::invalid(collection, "items", "no record to dispute"));
        }
        for item in &items {
            if item.id <= 0 {
                return Err(Error::invalid(
                    collection,
                    "id",
                    format!("`{}` is not a server id", item.id),
                ));
            }
            if item.row_version < 0 {
                return Err(Error::invalid(
                    collection,
                    "row_version",
                    format!("`{}` is negative", item.row_version),
                ));
            }
        }
        self.queue_disputes(&def.name, items)
    }

    fn queue_disputes(&self, collection: &str, items: Vec<RecordDisputeItem>) -> Result<Vec<i64>> {
        let dialect = read(&self.settings)?.dialect;
        let per_request = match dialect {
            Dialect::Mahak => RECONCILE_ITEMS_PER_REQUEST,
            Dialect::Documented => 1,
        };
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        let mut ids = Vec::new();
        for chunk in items.chunks(per_request) {
            let spec = Spec::Dispute {
                collection: collection.to_string(),
                items: chunk.to_vec(),
            };
            ids.push(insert_task(&tx, TaskKind::Dispute, &spec, None, 0)?);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Queues the `SolveDispute` items that tell the server which records
    /// of `collection` the replica holds, at which row versions (every live
    /// record with a server id), as the vendor's plugin does to repair a
    /// diverged replica: in requests of up to
    /// [`RECONCILE_ITEMS_PER_REQUEST`] records (one per record in the
    /// documented dialect, with resolution `reconcile`). Returns the
    /// queued tasks' ids (none for a collection with no such record).
    pub fn reconcile_dispute(&self, collection: &str) -> Result<Vec<i64>> {
        let def = read(&self.catalogue)?.require(collection)?.clone();
        let items: Vec<RecordDisputeItem> = self.reading(|conn| {
            let coll = store::coll_id_of(conn, &def.name)?;
            let mut stmt = conn.prepare(
                "SELECT server_id, row_version FROM rs_records
                 WHERE coll = ?1 AND server_id IS NOT NULL AND deleted = 0
                 ORDER BY server_id",
            )?;
            let rows = stmt.query_map([coll], |r| {
                Ok(RecordDisputeItem {
                    id: r.get(0)?,
                    row_version: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    resolution: "reconcile".into(),
                    reason: String::new(),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.queue_disputes(&def.name, items)
    }

    /// Every queued upload and dispute, parked ones included, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>> {
        self.reading(list)
    }

    /// The queued uploads, parked ones included, oldest first.
    pub fn uploads(&self) -> Result<Vec<TaskInfo>> {
        Ok(self
            .tasks()?
            .into_iter()
            .filter(|t| t.kind == TaskKind::Upload)
            .collect())
    }

    /// Removes a queued upload or dispute that is not parked (a parked one
    /// goes with `discard_dead_letter`). `NotFound` if there is none.
    pub fn cancel_task(&self, id: i64) -> Result<()> {
        let mut store = lock(&self.store)?;
        let tx = store.begin()?;
        let n = tx.execute(
            "DELETE FROM rs_tasks WHERE id = ?1 AND parked IS NULL",
            [id],
        )?;
        if n == 0 {
            return Err(Error::NotFound {
                collection: "tasks".into(),
                id: id.to_string(),
            });
        }
        tx.commit()
    }
}

/// A queue row.
pub(crate) struct TaskRow {
    pub id: i64,
    pub kind: TaskKind,
    pub request_id: String,
    pub spec: Spec,
    pub local_id: Option<i64>,
    pub size: u64,
    pub sent: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub parked: Option<i64>,
    pub queued_at: String,
}

const TASK_COLUMNS: &str =
    "id, kind, request_id, spec, local_id, size, sent, attempts, last_error, parked, queued_at";

/// The queue rows matching `filter` (an SQL condition), oldest first.
pub(crate) fn rows(conn: &rusqlite::Connection, filter: &str) -> Result<Vec<TaskRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TASK_COLUMNS} FROM rs_tasks WHERE {filter} ORDER BY id"
    ))?;
    let mut out = Vec::new();
    let mut raw = stmt.query([])?;
    while let Some(r) = raw.next()? {
        out.push(TaskRow {
            id: r.get(0)?,
            kind: TaskKind::parse(&r.get::<_, String>(1)?)?,
            request_id: r.get(2)?,
            spec: serde_json::from_str(&r.get::<_, String>(3)?)?,
            local_id: r.get(4)?,
            size: r.get::<_, i64>(5)?.max(0) as u64,
            sent: r.get(6)?,
            attempts: r.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
            last_error: r.get(8)?,
            parked: r.get(9)?,
            queued_at: r.get(10)?,
        });
    }
    Ok(out)
}

/// The bytes of an upload.
pub(crate) fn file(conn: &rusqlite::Connection, task: i64) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT data FROM rs_task_files WHERE task = ?1",
            [task],
            |r| r.get(0),
        )
        .optional()?)
}

/// The record an upload is for, if it is still the one it was queued for.
pub(crate) fn upload_record(
    conn: &rusqlite::Connection,
    task: &TaskRow,
) -> Result<Option<store::Row>> {
    let (
        Spec::Upload {
            collection,
            server_id,
            client_id,
            ..
        },
        Some(local_id),
    ) = (&task.spec, task.local_id)
    else {
        return Ok(None);
    };
    let Some(row) = store::row_by_local_id(conn, local_id)? else {
        return Ok(None);
    };
    let coll = store::coll_id_of(conn, collection)?;
    let same = conn
        .query_row(
            "SELECT coll = ?2 FROM rs_records WHERE local_id = ?1",
            params![local_id, coll],
            |r| r.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false)
        && match (client_id, server_id) {
            (Some(c), _) => row.client_id == Some(*c),
            (None, Some(s)) => row.server_id == Some(*s),
            (None, None) => false,
        };
    Ok(same.then_some(row))
}

fn info(conn: &rusqlite::Connection, t: TaskRow) -> Result<TaskInfo> {
    let (collection, file_name, items) = match &t.spec {
        Spec::Upload {
            collection,
            file_name,
            ..
        } => (Some(collection.clone()), Some(file_name.clone()), 0),
        Spec::OrderDispute { items } => (Some("orders".to_string()), None, items.len()),
        Spec::Dispute { collection, items } => (Some(collection.clone()), None, items.len()),
    };
    let record = if t.kind == TaskKind::Upload {
        upload_record(conn, &t)?.map(|r| match (r.server_id, r.client_id) {
            (Some(s), _) => RecordId::Server(s),
            (None, c) => RecordId::Client(c.unwrap_or(0)),
        })
    } else {
        None
    };
    let state = match (t.parked, t.sent) {
        (Some(dl), _) => TaskState::Parked { dead_letter: dl },
        (None, true) => TaskState::InDoubt,
        (None, false)
            if t.kind == TaskKind::Upload && !matches!(record, Some(RecordId::Server(_))) =>
        {
            TaskState::WaitingForRecord
        }
        (None, false) => TaskState::Queued,
    };
    Ok(TaskInfo {
        id: t.id,
        kind: t.kind,
        request_id: t.request_id,
        collection,
        record,
        file_name,
        size: t.size,
        items: items as u64,
        state,
        attempts: t.attempts,
        last_error: t.last_error,
        queued_at: t.queued_at,
    })
}

/// Every task, oldest first.
pub(crate) fn list(conn: &rusqlite::Connection) -> Result<Vec<TaskInfo>> {
    rows(conn, "1")?
        .into_iter()
        .map(|t| info(conn, t))
        .collect()
}

/// The tasks parked in dead letter `id`.
pub(crate) fn list_parked(conn: &rusqlite::Connection, id: i64) -> Result<Vec<TaskInfo>> {
    rows(conn, &format!("parked = {id}"))?
        .into_iter()
        .map(|t| info(conn, t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_names() {
        for bad in ["", " ", "a/b.jpg", "..", "a\"b", "a\nb", &"x".repeat(256)] {
            assert!(check_file_name("pictures", bad).is_err(), "{bad:?}");
        }
        for good in ["a.jpg", "فاکتور ۱۲.jpg", "IMG 0001.HEIC"] {
            check_file_name("pictures", good).unwrap();
        }
        assert_eq!(content_type_of("A.JPG"), "image/jpeg");
        assert_eq!(content_type_of("noext"), "application/octet-stream");
    }
}
