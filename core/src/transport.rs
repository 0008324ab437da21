//! The `Transport` trait: how the engine's HTTP requests leave the process.
//! The core does no I/O of its own; the ureq transport (`http.rs`) is the
//! default, and an app may bring its own HTTP stack (OkHttp, URLSession)
//! through the bindings. A transport only moves bytes: envelopes, status codes,
//! retries and login are handled above it, in `client.rs`.

use std::fmt;

/// An HTTP request as the engine builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST` for every Mahak Sync API call.
    pub method: String,
    /// The full URL, for example `https://host/API/v3/Sync/GetAllDataV2`.
    pub url: String,
    /// Request headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response as a transport returns it: any status is a response,
/// not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (name, value).
    pub headers: Vec<(String, String)>,
    /// The response body, complete (decoded, when it came compressed).
    pub body: Vec<u8>,
    /// How many bytes the body took on the wire, when the transport decoded
    /// a content encoding (gzip); `None` when the body is as it came (an
    /// app's transport hands over what it hands over). Only counted, for
    /// the sync's metrics.
    pub wire_bytes: Option<u64>,
}

impl HttpResponse {
    /// A response of `status` with `headers` and `body`, as it came.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            headers,
            body,
            wire_bytes: None,
        }
    }

    /// The bytes the body took on the wire.
    pub fn wire_len(&self) -> u64 {
        self.wire_bytes.unwrap_or(self.body.len() as u64)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The `Trackingid` header, in any case.
    pub fn tracking_id(&self) -> Option<&str> {
        self.header("trackingid")
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request got no (complete) response. Every kind is transient to the
/// engine: it keeps its changes and backs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The connect or the whole call timed out.
    Timeout,
    /// The connection broke: reset, closed before or during the response.
    Io,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// Anything else the transport could not do.
    Other,
}

/// A request that got no complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What went wrong.
    pub kind: TransportErrorKind,
    /// A human-readable message (never contains credentials).
    pub message: String,
}

impl TransportError {
    /// A new error of `kind`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TransportError {}

/// Sends one HTTP request and returns the complete response.
///
/// Implementations must be thread-safe; they are called off the UI thread and
/// may block. A response of any status (including 4xx and 5xx) is `Ok`; only
/// a missing or incomplete response is an `Err`.
pub trait Transport: Send + Sync {
    /// Sends `request` and waits for the whole response.
    fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError>;

    /// [`Transport::send`], reading the body into `buffer` (cleared first)
    /// when the transport can: a pull page's buffer comes back for the next
    /// page instead of being freed and allocated again. The default ignores
    /// `buffer`.
    fn send_into(
        &self,
        request: &HttpRequest,
        buffer: Vec<u8>,
    ) -> std::result::Result<HttpResponse, TransportError> {
        drop(buffer);
        self.send(request)
    }

    /// [`Transport::send`], telling `sent` how many bytes of the body have
    /// gone out so far, as they go (an upload's progress; the count starts
    /// again from 0 on a retry). The default sends, then tells the whole
    /// body once the answer is in.
    fn send_reporting(
        &self,
        request: &HttpRequest,
        sent: &dyn Fn(u64),
    ) -> std::result::Result<HttpResponse, TransportError> {
        let response = self.send(request)?;
        sent(request.body.len() as u64);
        Ok(response)
    }

    /// Fetches a public file (a picture of the cache): `request.method` is
    /// `GET`, the body is empty and no token or credential is in it. The
    /// default hands it to [`Transport::send`]; a transport that only
    /// speaks POST overrides it (or answers an error, and the picture waits
    /// for a later sync: a picture never fails a sync).
    fn get(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        self.send(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive() {
        let r = HttpResponse {
            status: 200,
            headers: vec![("TrackingId".into(), "abc".into())],
            body: vec![],
            wire_bytes: None,
        };
        assert_eq!(r.tracking_id(), Some("abc"));
        assert_eq!(r.header("TRACKINGID"), Some("abc"));
        assert_eq!(r.header("other"), None);
    }
}
