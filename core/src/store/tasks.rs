//! The task queue's rows (`rs_tasks`) and the files of uploads
//! (`rs_task_files`): queued, marked sent before their call, parked, done.

use rusqlite::{params, Connection, OptionalExtension};

use super::db::{now, Tx};
use super::records::Row;
use crate::error::Result;
use crate::record::RecordId;
use crate::tasks::{Spec, TaskInfo, TaskKind, TaskState};

/// A new request id: unique per replica (the queue enforces it), random
/// enough to be unique on the server.
fn request_id() -> String {
    format!(
        "rs-{:x}-{:016x}",
        chrono::Utc::now().timestamp_millis(),
        fastrand::u64(..)
    )
}

pub(crate) fn insert_task(
    tx: &Tx<'_>,
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
            now()
        ],
    )?;
    Ok(tx.last_insert_rowid())
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
pub(crate) fn rows(conn: &Connection, filter: &str) -> Result<Vec<TaskRow>> {
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
pub(crate) fn file(conn: &Connection, task: i64) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row(
            "SELECT data FROM rs_task_files WHERE task = ?1",
            [task],
            |r| r.get(0),
        )
        .optional()?)
}

/// The record an upload is for, if it is still the one it was queued for.
pub(crate) fn upload_record(conn: &Connection, task: &TaskRow) -> Result<Option<Row>> {
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
    let Some(row) = super::records::row_by_local_id(conn, local_id)? else {
        return Ok(None);
    };
    let coll = super::db::coll_id_of(conn, collection)?;
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

fn info(conn: &Connection, t: TaskRow) -> Result<TaskInfo> {
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
pub(crate) fn list(conn: &Connection) -> Result<Vec<TaskInfo>> {
    rows(conn, "1")?
        .into_iter()
        .map(|t| info(conn, t))
        .collect()
}

/// The tasks parked in dead letter `id`.
pub(crate) fn list_parked(conn: &Connection, id: i64) -> Result<Vec<TaskInfo>> {
    rows(conn, &format!("parked = {id}"))?
        .into_iter()
        .map(|t| info(conn, t))
        .collect()
}

impl Tx<'_> {
    /// Keeps the bytes of upload `task`.
    pub fn insert_task_file(&self, task: i64, data: &[u8]) -> Result<()> {
        self.execute(
            "INSERT INTO rs_task_files(task, data) VALUES (?1, ?2)",
            params![task, data],
        )?;
        Ok(())
    }

    /// Marks a task sent, before its call: a lost answer is known at the
    /// next sync.
    pub fn mark_task_sent(&self, task: i64) -> Result<()> {
        self.execute(
            "UPDATE rs_tasks SET sent = 1, attempts = attempts + 1 WHERE id = ?1",
            [task],
        )?;
        Ok(())
    }

    /// Marks a task not sent, with the failure that stopped it (it is safe
    /// to send again).
    pub fn mark_task_failed(&self, task: i64, error: &str) -> Result<()> {
        self.execute(
            "UPDATE rs_tasks SET sent = 0, last_error = ?2 WHERE id = ?1",
            params![task, error],
        )?;
        Ok(())
    }

    /// Parks a task in dead letter `dead_letter` with the server's words.
    pub fn park_task(&self, task: i64, dead_letter: i64, message: &str) -> Result<()> {
        self.execute(
            "UPDATE rs_tasks SET parked = ?2, last_error = ?3 WHERE id = ?1",
            params![task, dead_letter, message],
        )?;
        Ok(())
    }

    /// Removes a task (done, or cancelled when `unparked_only` and not
    /// parked); true when there was one.
    pub fn delete_task(&self, task: i64, unparked_only: bool) -> Result<bool> {
        let sql = if unparked_only {
            "DELETE FROM rs_tasks WHERE id = ?1 AND parked IS NULL"
        } else {
            "DELETE FROM rs_tasks WHERE id = ?1"
        };
        Ok(self.execute(sql, [task])? > 0)
    }
}

/// Tasks in the queue, parked ones included.
pub(crate) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM rs_tasks", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The server id and row version of every live record of collection
/// `coll` that has a server id, by server id.
pub(crate) fn held_versions(conn: &Connection, coll: i64) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT server_id, row_version FROM rs_records
         WHERE coll = ?1 AND server_id IS NOT NULL AND deleted = 0
         ORDER BY server_id",
    )?;
    let rows = stmt.query_map([coll], |r| {
        Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
