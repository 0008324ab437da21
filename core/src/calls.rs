//! One HTTP attempt as the sync log keeps it. A leaf: the API client makes
//! these, the store writes them, the flows log them.

use chrono::{DateTime, Utc};

/// One HTTP attempt, for the sync log. Never holds a password or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// When the attempt started.
    pub at: DateTime<Utc>,
    /// Endpoint name, e.g. `GetAllDataV2` or `LoginV2`.
    pub endpoint: String,
    /// Attempt number within its retry loop, from 1.
    pub attempt: u32,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration of the attempt in milliseconds.
    pub duration_ms: u64,
    /// The response's `Trackingid` header.
    pub tracking_id: Option<String>,
    /// What went wrong on this attempt, if anything.
    pub error: Option<String>,
}
