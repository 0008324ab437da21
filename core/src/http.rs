//! STUB: replaced by the ureq transport.
use crate::transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};
use std::time::Duration;

/// Timeouts.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-call timeout.
    pub timeout: Duration,
}

/// ureq transport.
pub struct UreqTransport;

impl Transport for UreqTransport {
    fn send(&self, _r: &HttpRequest) -> Result<HttpResponse, TransportError> {
        Err(TransportError::new(TransportErrorKind::Other, "stub"))
    }
}
