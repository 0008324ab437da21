//! One HTTP attempt as the sync log keeps it, with what it moved and why
//! another attempt followed it. A leaf: the API client makes these, the
//! store writes them, the flows log and count them.

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
    /// Bytes of the request body sent (0 when no request left).
    pub sent_bytes: u64,
    /// Bytes of the answer's body, decoded.
    pub received_bytes: u64,
    /// Bytes the answer's body took on the wire (compressed, when it was).
    pub wire_received_bytes: u64,
    /// Why the call goes on with another attempt after this one, if it
    /// does.
    pub retry: Option<RetryCause>,
}

/// Why an attempt was followed by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// No complete answer: the connection failed or broke.
    Transport,
    /// The answer stopped coming (a read timeout).
    Stall,
    /// A 5xx answer that may pass.
    ServerError,
    /// A 429 answer (its `Retry-After` honoured).
    RateLimited,
    /// An answer cut short mid-body.
    CutShort,
    /// The token was refused: a new login, then the call again.
    TokenRefresh,
}
