//! The HTTP transport an app may implement itself (OkHttp, URLSession), and
//! its adapter to `rowsync::Transport`. A transport only moves bytes: the
//! engine builds the requests, reads the statuses and does the retries.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A request the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportRequest {
    /// `POST` for every Mahak Sync API call.
    pub method: String,
    /// The full URL.
    pub url: String,
    /// Request headers (may include `Authorization`: never log them).
    pub headers: Vec<HttpHeader>,
    /// The request body.
    pub body: Vec<u8>,
}

/// A complete response. Any status (4xx, 5xx too) is a response.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<HttpHeader>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Why a request got no complete response. Every kind makes the engine keep
/// its changes and back off.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum TransportFailure {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect {
        /// What happened.
        reason: String,
    },
    /// The connect or the whole call timed out.
    Timeout {
        /// What happened.
        reason: String,
    },
    /// The connection broke before the response was complete.
    Io {
        /// What happened.
        reason: String,
    },
    /// The TLS handshake or certificate check failed.
    Tls {
        /// What happened.
        reason: String,
    },
    /// Anything else.
    Other {
        /// What happened.
        reason: String,
    },
}

impl std::fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, reason) = self.parts();
        write!(f, "{kind:?}: {reason}")
    }
}

impl std::error::Error for TransportFailure {}

impl TransportFailure {
    fn parts(&self) -> (rowsync::TransportErrorKind, &str) {
        use rowsync::TransportErrorKind as K;
        match self {
            TransportFailure::Connect { reason } => (K::Connect, reason),
            TransportFailure::Timeout { reason } => (K::Timeout, reason),
            TransportFailure::Io { reason } => (K::Io, reason),
            TransportFailure::Tls { reason } => (K::Tls, reason),
            TransportFailure::Other { reason } => (K::Other, reason),
        }
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportFailure::Other { reason: e.reason }
    }
}

/// Sends HTTP requests for the engine, in place of the built-in client.
/// Called off the UI thread; may block until the response is complete.
#[uniffi::export(foreign)]
pub trait HttpTransport: Send + Sync {
    /// Sends `request` and returns the whole response, or why there is none.
    fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportFailure>;
}

fn headers(h: &[(String, String)]) -> Vec<HttpHeader> {
    h.iter()
        .map(|(name, value)| HttpHeader {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

pub(crate) struct TransportAdapter(pub(crate) Arc<dyn HttpTransport>);

impl rowsync::Transport for TransportAdapter {
    fn send(
        &self,
        request: &rowsync::HttpRequest,
    ) -> Result<rowsync::HttpResponse, rowsync::TransportError> {
        let req = TransportRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: headers(&request.headers),
            body: request.body.clone(),
        };
        let out = catch_unwind(AssertUnwindSafe(|| self.0.send(req))).unwrap_or_else(|_| {
            Err(TransportFailure::Other {
                reason: "the app's transport failed unexpectedly".into(),
            })
        });
        match out {
            Ok(r) => Ok(rowsync::HttpResponse {
                status: r.status,
                headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                body: r.body,
                wire_bytes: None,
            }),
            Err(e) => {
                let (kind, reason) = e.parts();
                Err(rowsync::TransportError::new(kind, reason))
            }
        }
    }
}
