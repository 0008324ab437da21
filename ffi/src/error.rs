//! The one public error of the bindings, and the one place where the core's
//! rich `rowsync::Error` is mapped onto it. Variants are what an app acts on:
//! retry later (offline, rate limited, server), ask the user to log in again
//! (auth failed), fix the data (invalid input, not found, rejected), or
//! report a bug (protocol, storage). Messages carry no password or token.

use std::fmt;

/// An error from the rowsync engine. Kotlin sees it as `RowsyncException`,
/// Swift as `RowsyncError`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum RowsyncError {
    /// The server could not be reached; local data and changes are kept.
    Offline {
        /// What happened on the last attempt.
        detail: String,
        /// When a retry would make sense, in milliseconds, if known.
        retry_after_ms: Option<u64>,
    },
    /// The server stalled: the same call's answer stopped coming twice in a
    /// row, so the sync ended early. Local data and changes are kept; try
    /// again later (the server, not the network, is the likely cause).
    Stalled {
        /// The endpoint whose answer stalled.
        endpoint: String,
        /// What the last attempt saw.
        detail: String,
        /// The attempts made, each of which stalled.
        attempts: u32,
    },
    /// Login was refused: ask the user for new credentials.
    AuthFailed {
        /// The Mahak code (1001 database/package, 1002 user/password).
        code: i64,
        /// The server's message.
        detail: String,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// The server kept answering 429; try again later.
    RateLimited {
        /// How long the server asked to wait, in milliseconds.
        retry_after_ms: Option<u64>,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// The server kept failing with 5xx; try again later.
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message.
        detail: String,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// The server holds a newer version of a record.
    Conflict {
        /// The server's message.
        detail: String,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// A value the app gave is not valid (unknown collection, bad JSON, a
    /// field the engine manages, a missing parent...).
    InvalidInput {
        /// The collection concerned.
        collection: String,
        /// The offending field (`record` for the whole value, empty if none).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No record (or dead letter) with that id.
    NotFound {
        /// The collection.
        collection: String,
        /// The id asked for, as text.
        id: String,
    },
    /// The server refused the data (validation or referential integrity).
    Rejected {
        /// The Mahak error code.
        code: i64,
        /// The server's message.
        detail: String,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// The server's answer breaks the protocol; nothing of it was applied.
    Protocol {
        /// What is wrong.
        detail: String,
        /// The server's tracking id, for support.
        tracking_id: Option<String>,
    },
    /// The configuration is not usable (no URL, no credentials, bad URL).
    Config {
        /// What is wrong.
        detail: String,
    },
    /// The local database failed (disk full, corrupt, newer schema...).
    Storage {
        /// What failed.
        detail: String,
    },
    /// The engine was shut down while the call waited.
    Interrupted,
    /// The operation would lose local changes that are still pending.
    PendingChanges {
        /// How many changes are pending or parked.
        count: u64,
    },
    /// The server's login names another database or visitor than the one
    /// the replica was filled from. Nothing was changed: wipe the replica
    /// (`wipe(force = true)`) to sync with the new one, or keep it.
    ReplicaMismatch {
        /// `databaseId` or `visitorId`.
        what: String,
        /// The replica's value.
        replica: i64,
        /// The server's value.
        server: i64,
    },
    /// A sync under one user met changes another user made on this device
    /// (a shared device changed hands): they are never sent under this
    /// login. This user's own changes went out; that user's stay in the
    /// outbox, in order, until that user signs in again and syncs, or the
    /// app exports them (`export_pending`) and discards them
    /// (`discard_pending`).
    PendingChangesOfAnotherUser {
        /// The user who made them.
        user: String,
        /// How many of that user's changes wait.
        count: u64,
    },
    /// An encrypted replica was opened without its key or with another one
    /// (or a plain one with a key). Nothing was read or changed.
    WrongKey {
        /// What was wrong.
        detail: String,
    },
    /// A file handed to the upload queue is larger than the settings'
    /// `max_upload_bytes`. Nothing was queued.
    FileTooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
}

impl fmt::Display for RowsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowsyncError::Offline { detail, .. } => write!(f, "offline: {detail}"),
            RowsyncError::Stalled {
                endpoint,
                detail,
                attempts,
            } => write!(
                f,
                "the server stalled at `{endpoint}` {attempts} times in a row: {detail}"
            ),
            RowsyncError::AuthFailed { code, detail, .. } => {
                write!(f, "authentication failed (code {code}): {detail}")
            }
            RowsyncError::RateLimited { .. } => write!(f, "rate limited by the server"),
            RowsyncError::Server { status, detail, .. } => {
                write!(f, "server error (HTTP {status}): {detail}")
            }
            RowsyncError::Conflict { detail, .. } => write!(f, "conflict: {detail}"),
            RowsyncError::InvalidInput {
                collection,
                field,
                reason,
            } => write!(
                f,
                "invalid input for `{collection}` field `{field}`: {reason}"
            ),
            RowsyncError::NotFound { collection, id } => {
                write!(f, "no record `{id}` in `{collection}`")
            }
            RowsyncError::Rejected { code, detail, .. } => {
                write!(f, "rejected by the server (code {code}): {detail}")
            }
            RowsyncError::Protocol { detail, .. } => {
                write!(f, "malformed server response: {detail}")
            }
            RowsyncError::Config { detail } => write!(f, "invalid configuration: {detail}"),
            RowsyncError::Storage { detail } => write!(f, "storage error: {detail}"),
            RowsyncError::Interrupted => write!(f, "interrupted: the engine is shutting down"),
            RowsyncError::PendingChanges { count } => {
                write!(f, "{count} local changes are still pending")
            }
            RowsyncError::ReplicaMismatch {
                what,
                replica,
                server,
            } => write!(
                f,
                "the replica holds {what} {replica}, but the server now says {server}"
            ),
            RowsyncError::PendingChangesOfAnotherUser { user, count } => write!(
                f,
                "{count} change(s) made by user `{user}` wait on this device and are not sent under another login"
            ),
            RowsyncError::WrongKey { detail } => write!(f, "wrong key: {detail}"),
            RowsyncError::FileTooLarge { size, limit } => write!(
                f,
                "the file is {size} bytes, more than the {limit} an upload may have"
            ),
        }
    }
}

impl std::error::Error for RowsyncError {}

fn millis(d: Option<std::time::Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl From<rowsync::Error> for RowsyncError {
    fn from(e: rowsync::Error) -> Self {
        use rowsync::Error as E;
        match e {
            E::UnknownCollection(c) => RowsyncError::InvalidInput {
                reason: format!("unknown collection `{c}`"),
                collection: c,
                field: String::new(),
            },
            E::InvalidRecord {
                collection,
                field,
                reason,
            } => RowsyncError::InvalidInput {
                collection,
                field,
                reason,
            },
            E::InvalidQuery {
                collection,
                field,
                reason,
            } => RowsyncError::InvalidInput {
                collection,
                field,
                reason,
            },
            E::NotFound { collection, id } => RowsyncError::NotFound { collection, id },
            E::Offline {
                message,
                retry_after,
                ..
            } => RowsyncError::Offline {
                detail: message,
                retry_after_ms: millis(retry_after),
            },
            E::Stalled {
                endpoint,
                attempts,
                message,
                ..
            } => RowsyncError::Stalled {
                endpoint,
                detail: message,
                attempts,
            },
            E::AuthFailed {
                code,
                message,
                tracking_id,
            } => RowsyncError::AuthFailed {
                code,
                detail: message,
                tracking_id,
            },
            E::RateLimited {
                retry_after,
                tracking_id,
            } => RowsyncError::RateLimited {
                retry_after_ms: millis(retry_after),
                tracking_id,
            },
            E::Server {
                status,
                message,
                tracking_id,
            } => RowsyncError::Server {
                status,
                detail: message,
                tracking_id,
            },
            E::Conflict {
                message,
                tracking_id,
                ..
            } => RowsyncError::Conflict {
                detail: message,
                tracking_id,
            },
            E::Rejected {
                code,
                message,
                tracking_id,
                ..
            } => RowsyncError::Rejected {
                code,
                detail: message,
                tracking_id,
            },
            e @ E::Protocol { .. } => RowsyncError::Protocol {
                tracking_id: e.tracking_id().map(str::to_string),
                detail: e.to_string(),
            },
            // The save may or may not have landed; the engine reconciles it
            // on the next sync: for the app, a sync to retry later.
            e @ E::InDoubt { .. } => RowsyncError::Offline {
                detail: e.to_string(),
                retry_after_ms: None,
            },
            E::ReplicaMismatch {
                what,
                replica,
                server,
            } => RowsyncError::ReplicaMismatch {
                what,
                replica,
                server,
            },
            e @ E::DialectMismatch { .. } => RowsyncError::Config {
                detail: e.to_string(),
            },
            E::Config(detail) => RowsyncError::Config { detail },
            E::Interrupted => RowsyncError::Interrupted,
            E::PendingChanges(count) => RowsyncError::PendingChanges { count },
            E::PendingChangesOfAnotherUser { user, count } => {
                RowsyncError::PendingChangesOfAnotherUser { user, count }
            }
            e @ (E::Storage(_) | E::Json(_) | E::Database(_)) => RowsyncError::Storage {
                detail: e.to_string(),
            },
            E::WrongKey(detail) => RowsyncError::WrongKey { detail },
            E::FileTooLarge { size, limit } => RowsyncError::FileTooLarge { size, limit },
            E::HintRefused(reason) => RowsyncError::InvalidInput {
                collection: "hint".into(),
                field: "signature".into(),
                reason,
            },
        }
    }
}

impl RowsyncError {
    /// An app-supplied JSON text that does not parse.
    pub(crate) fn bad_json(collection: &str, err: &serde_json::Error) -> Self {
        RowsyncError::InvalidInput {
            collection: collection.to_string(),
            field: "record".to_string(),
            reason: format!("not valid JSON: {err}"),
        }
    }
}

/// The result type of the bindings.
pub type Result<T, E = RowsyncError> = std::result::Result<T, E>;
