//! STUB: replaced by the API client (login, token refresh, retries, envelope).
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::transport::Transport;

/// Credentials for `LoginV2`.
#[derive(Clone)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password (never logged, never stored).
    pub password: String,
    /// Mahak database id.
    pub database_id: i64,
    /// Mahak package number.
    pub package_number: i64,
}

/// Retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call.
    pub max_attempts: u32,
    /// First backoff delay.
    pub base_delay: Duration,
    /// Backoff cap.
    pub max_delay: Duration,
    /// Longest Retry-After honoured.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Client configuration.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://host/API/v3`.
    pub base_url: String,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Renew the token this long before it expires.
    pub token_refresh_margin: Duration,
}

/// One HTTP call, for the sync log.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// When it started.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Endpoint name, e.g. `GetAllDataV2`.
    pub endpoint: String,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Tracking id.
    pub tracking_id: Option<String>,
    /// Error text.
    pub error: Option<String>,
}

/// A successful reply.
pub struct Reply {
    /// The envelope's `data`.
    pub data: Box<serde_json::value::RawValue>,
    /// Tracking id.
    pub tracking_id: Option<String>,
    /// HTTP status.
    pub status: u16,
}

/// Interruptible sleeps.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl Shutdown {
    /// Triggers shutdown.
    pub fn trigger(&self) {}
}

/// API client.
pub struct ApiClient {
    _t: Arc<dyn Transport>,
}

impl ApiClient {
    /// New client.
    pub fn new(
        _config: ClientConfig,
        _credentials: Credentials,
        transport: Arc<dyn Transport>,
        _shutdown: Shutdown,
    ) -> Result<Self> {
        Ok(ApiClient { _t: transport })
    }

    /// One call.
    pub fn call(&self, _endpoint: &str, _body: &[u8], _log: &mut dyn FnMut(CallRecord)) -> Result<Reply> {
        Err(Error::Config("stub".into()))
    }
}
