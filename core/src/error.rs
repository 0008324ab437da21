//! The engine's error type. One enum tells the app what it can do about a
//! failure: retry later (offline, rate limited, server error), fix credentials
//! (auth failed), fix data (invalid input, rejected by the server), or report a
//! bug (protocol, storage). Messages never contain a password or a token.

use std::time::Duration;

/// One failing record, as a Mahak server lists it in the `errors` of a 2001,
/// 2002 or 3001 answer (PROTOCOL.md section 2).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordError {
    /// The collection, for example `orders`.
    #[serde(default)]
    pub entity: Option<String>,
    /// The record's client id, when the server named it.
    #[serde(default, rename = "clientId")]
    pub client_id: Option<i64>,
    /// The record's server id, when the server named it.
    #[serde(default)]
    pub id: Option<i64>,
    /// The failing field, when the server named it.
    #[serde(default)]
    pub field: Option<String>,
    /// The error code (2001, 2002, 3001).
    #[serde(default)]
    pub code: Option<i64>,
    /// The server's message.
    #[serde(default)]
    pub message: Option<String>,
    /// The server's current record (given with 2002).
    #[serde(default, rename = "serverRecord")]
    pub server_record: Option<serde_json::Value>,
}

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The collection is not in the catalogue.
    #[error("unknown collection `{0}`")]
    UnknownCollection(String),

    /// A record the app gave is not valid for its collection.
    #[error("invalid record for `{collection}`: field `{field}`: {reason}")]
    InvalidRecord {
        /// The collection.
        collection: String,
        /// The offending field (or `record` for the whole value).
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// A live query the app gave is not valid for its collection (a bad
    /// field name, a filter on an object, a limit out of range).
    #[error("invalid query on `{collection}`: `{field}`: {reason}")]
    InvalidQuery {
        /// The collection.
        collection: String,
        /// The offending field (or `limit`).
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// No record with that id.
    #[error("no record `{id}` in `{collection}`")]
    NotFound {
        /// The collection.
        collection: String,
        /// The id asked for, as text.
        id: String,
    },

    /// The server could not be reached, or kept failing with transient errors.
    #[error("offline: {message}")]
    Offline {
        /// What happened on the last attempt.
        message: String,
        /// When the engine would try again, if it knows.
        retry_after: Option<Duration>,
        /// The tracking id of the last response, if one came back.
        tracking_id: Option<String>,
    },

    /// The server stalled: the same call's answer stopped coming (no
    /// headers, or a body that stopped mid-way, past the read timeout) twice
    /// in a row, so the sync ended early instead of waiting out every
    /// attempt. Local data and changes are kept; a later sync tries again.
    #[error("the server stalled at `{endpoint}` {attempts} times in a row: {message}")]
    Stalled {
        /// The endpoint that stalled (`GetAllData`, ...).
        endpoint: String,
        /// The attempts made, each of which stalled.
        attempts: u32,
        /// What the last attempt saw.
        message: String,
        /// The tracking id of the last response, if one came back.
        tracking_id: Option<String>,
    },

    /// Login was refused (1001, 1002) or a token was refused twice in a row.
    #[error("authentication failed (code {code}): {message}")]
    AuthFailed {
        /// 1001 (database/package), 1002 (user/password), or the last code seen.
        code: i64,
        /// The server's message.
        message: String,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// The server kept answering 429 past the retry budget.
    #[error("rate limited by the server")]
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// The server kept answering 5xx past the retry budget.
    #[error("server error (HTTP {status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's message, if the body had one.
        message: String,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// The server answered 2002: the sent rowVersion is older than its own.
    #[error("concurrency conflict: {message}")]
    Conflict {
        /// The server's message.
        message: String,
        /// The records in conflict.
        errors: Vec<RecordError>,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// The server rejected data (2001 referential integrity, 3001 validation,
    /// or another 4xx code).
    #[error("rejected by the server (code {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The Mahak error code.
        code: i64,
        /// The server's message.
        message: String,
        /// The failing records, when the server listed them.
        errors: Vec<RecordError>,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// The server's answer does not follow the protocol (malformed JSON, a
    /// record without its id, a wrong type). Nothing of it was applied.
    #[error("malformed server response{}: {message}", collection.as_deref().map(|c| format!(" for `{c}`")).unwrap_or_default())]
    Protocol {
        /// The collection concerned, if known.
        collection: Option<String>,
        /// What is wrong.
        message: String,
        /// The tracking id of the response.
        tracking_id: Option<String>,
    },

    /// A save's answer never arrived whole (the connection broke, the body
    /// was cut or unreadable, or the server failed mid-way): the server may
    /// or may not have applied it. The creates it carried are kept *in
    /// doubt* and are sent again only after a pull shows, by client id, that
    /// the server does not have them.
    #[error("the server may or may not have applied the request: {message}")]
    InDoubt {
        /// What happened.
        message: String,
        /// The tracking id of the response, if one came back.
        tracking_id: Option<String>,
    },

    /// The server's login names another database or another visitor than
    /// the one the replica was filled from. Nothing was changed; the app
    /// decides whether to wipe the replica (`Engine::wipe`).
    #[error("the replica holds {what} {replica}, but the server now says {server}: wipe the replica to sync with it")]
    ReplicaMismatch {
        /// `databaseId` or `visitorId`.
        what: String,
        /// The value the replica was filled with.
        replica: i64,
        /// The value the server sent at login.
        server: i64,
    },

    /// The replica holds data synced in another dialect; switching would mix
    /// two servers' records. Wipe it first (`Engine::wipe`).
    #[error(
        "the replica holds data of the `{replica}` dialect; wipe it before switching to `{asked}`"
    )]
    DialectMismatch {
        /// The replica's dialect.
        replica: String,
        /// The dialect asked for.
        asked: String,
    },

    /// The engine's configuration is not usable (for example a plain `http://`
    /// URL to a remote host, or no credentials).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The engine was shut down while waiting.
    #[error("interrupted: the engine is shutting down")]
    Interrupted,

    /// The operation would lose changes that are still pending.
    #[error("{0} local changes are still pending")]
    PendingChanges(u64),

    /// A sync under one user met changes another user made on this device
    /// (a shared device changed hands): they are never sent under this
    /// login. The sync sent this user's own changes and stopped before
    /// that user's, which stay in the outbox, in order. Ways out: that
    /// user signs in again and syncs, or the app exports them
    /// (`Engine::export_pending`) and then discards them
    /// (`Engine::discard_pending`).
    #[error("{count} change(s) made by user `{user}` wait on this device and are not sent under another login")]
    PendingChangesOfAnotherUser {
        /// The user who made them (the oldest such user, if several).
        user: String,
        /// How many of that user's changes wait.
        count: u64,
    },

    /// The local database failed.
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),

    /// JSON could not be read or written.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),

    /// The local database is from a newer engine, or damaged.
    #[error("database error: {0}")]
    Database(String),

    /// An encrypted replica was opened without its key or with another
    /// one (or a plain one with a key). Nothing was read or changed.
    #[error("wrong key: {0}")]
    WrongKey(String),

    /// A push hint was refused: a bad signature, or not a hint. Nothing
    /// was changed.
    #[error("hint refused: {0}")]
    HintRefused(String),

    /// A file handed to the upload queue is larger than
    /// `Settings::max_upload_bytes`. Nothing was queued.
    #[error("the file is {size} bytes, more than the {limit} an upload may have")]
    FileTooLarge {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for failures that a later sync may get past without any change
    /// (offline, rate limited, server errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Offline { .. }
                | Error::Stalled { .. }
                | Error::RateLimited { .. }
                | Error::Server { .. }
                | Error::InDoubt { .. }
        )
    }

    /// The tracking id of the server response behind this error, if any.
    pub fn tracking_id(&self) -> Option<&str> {
        match self {
            Error::Offline { tracking_id, .. }
            | Error::Stalled { tracking_id, .. }
            | Error::AuthFailed { tracking_id, .. }
            | Error::RateLimited { tracking_id, .. }
            | Error::Server { tracking_id, .. }
            | Error::Conflict { tracking_id, .. }
            | Error::Rejected { tracking_id, .. }
            | Error::Protocol { tracking_id, .. }
            | Error::InDoubt { tracking_id, .. } => tracking_id.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn invalid(collection: &str, field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidRecord {
            collection: collection.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
