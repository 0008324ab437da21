//! The server's own error type, for the library API (opening, admin writes,
//! starting the HTTP listener, the command line). Protocol errors sent to
//! clients are not errors here: they are ordinary responses built by the
//! handler.

/// An error of the reference server's library API.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A socket or file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// JSON could not be read or written.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The collection is not in the catalogue.
    #[error("unknown collection `{0}`")]
    UnknownCollection(String),
    /// No record with that id.
    #[error("no record {id} in `{collection}`")]
    NotFound {
        /// The collection.
        collection: String,
        /// The server id asked for.
        id: i64,
    },
    /// A value given to the admin API is not acceptable.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Bad command-line arguments.
    #[error("usage: {0}")]
    Usage(String),
}
