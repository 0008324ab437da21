//! The task queue's vocabulary: what the app asks the server beside record
//! changes (uploads and disputes), how a queued task is kept and where it
//! stands. The queue's rows are `store/tasks.rs`; the bytes of each call
//! are the dialect's (`api/dialect/`); the sending is `sync/tasks.rs`; the
//! app's entry points are `engine/tasks.rs`.
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
//!   server's words if refused.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::record::RecordId;

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
pub enum Spec {
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

    pub(crate) fn parse(s: &str) -> Result<Self> {
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

/// A file name the server can take: a name, not a path, printable, at most
/// 255 bytes.
pub(crate) fn check_file_name(collection: &str, name: &str) -> Result<()> {
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
pub(crate) fn content_type_of(name: &str) -> &'static str {
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
