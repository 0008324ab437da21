//! The default [`Transport`]: blocking HTTP over ureq 3 with rustls. It only
//! moves bytes: every HTTP status comes back as a response, bodies are read
//! whole with no size limit, redirects are not followed, and ureq's errors are
//! folded into [`TransportErrorKind`]. Which URLs it may be given is
//! `url.rs`'s to say.

use std::io;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};

/// Timeouts of the ureq transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Longest time to set up a connection (DNS, TCP, TLS handshake).
    pub connect_timeout: Duration,
    /// Longest time for the whole call, the response body included.
    pub timeout: Duration,
    /// Longest wait for the response's headers, and for its body: a server
    /// that stalls mid-answer is an error after this, not after `timeout`.
    pub read_timeout: Duration,
    /// Ask for gzip answers (`Accept-Encoding: gzip`) and decode them,
    /// streaming: a shop on a mobile link waits for bytes, not for CPU.
    pub gzip: bool,
}

impl Default for HttpConfig {
    /// 10 s to connect, 30 s to read, 60 s for the whole call.
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(30),
            gzip: true,
        }
    }
}

/// A [`Transport`] over a ureq 3 agent (connection pooling, rustls with the
/// webpki roots). Cheap to share: put it in an `Arc`.
pub struct UreqTransport {
    agent: ureq::Agent,
    config: HttpConfig,
}

impl std::fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UreqTransport")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl UreqTransport {
    /// A transport with these timeouts. Fails with `Error::Config` when a
    /// timeout is zero.
    pub fn new(config: HttpConfig) -> Result<Self> {
        if config.connect_timeout.is_zero()
            || config.timeout.is_zero()
            || config.read_timeout.is_zero()
        {
            return Err(Error::Config(
                "HTTP timeouts must be greater than zero".to_string(),
            ));
        }
        let agent_config = ureq::Agent::config_builder()
            // Every status is a response; the client interprets it.
            .http_status_as_error(false)
            // A POST body is never replayed to another location: a redirect
            // comes back to the client as a response.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_recv_body(Some(config.read_timeout))
            .user_agent(concat!("rowsync/", env!("CARGO_PKG_VERSION")))
            // `Accept-Encoding: gzip` is asked for in `exchange` and the
            // answer decoded there, where its bytes on the wire are counted.
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .build();
        Ok(UreqTransport {
            agent: ureq::Agent::new_with_config(agent_config),
            config,
        })
    }

    /// The timeouts this transport was built with.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }
}

impl Transport for UreqTransport {
    fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        self.send_into(request, Vec::new())
    }

    fn send_into(
        &self,
        request: &HttpRequest,
        buffer: Vec<u8>,
    ) -> std::result::Result<HttpResponse, TransportError> {
        self.exchange(request, request.body.as_slice(), false, buffer)
    }

    fn send_reporting(
        &self,
        request: &HttpRequest,
        sent: &dyn Fn(u64),
    ) -> std::result::Result<HttpResponse, TransportError> {
        let mut body = Counting {
            data: &request.body,
            at: 0,
            sent,
        };
        self.exchange(
            request,
            ureq::SendBody::from_reader(&mut body),
            true,
            Vec::new(),
        )
    }

    fn get(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        self.exchange(request, (), false, Vec::new())
    }
}

/// The most of a reported body handed over at once.
const PIECE: usize = 16 * 1024;

/// A request body read out in pieces, telling how much went so far.
struct Counting<'a> {
    data: &'a [u8],
    at: usize,
    sent: &'a dyn Fn(u64),
}

impl io::Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.at..).unwrap_or_default();
        // Small pieces, so the count moves often (ureq writes each to the
        // connection before it asks for more).
        let n = rest.len().min(buf.len()).min(PIECE);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        if n > 0 {
            (self.sent)(self.at as u64);
        }
        Ok(n)
    }
}

impl UreqTransport {
    /// One exchange: `body` goes out (with its length declared when
    /// `declare_length`: a body read from a reader would otherwise go
    /// chunked), the answer is read into `buffer`.
    fn exchange(
        &self,
        request: &HttpRequest,
        body: impl ureq::AsSendBody,
        declare_length: bool,
        buffer: Vec<u8>,
    ) -> std::result::Result<HttpResponse, TransportError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if self.config.gzip && request.header("accept-encoding").is_none() {
            builder = builder.header("Accept-Encoding", "gzip");
        }
        if declare_length && request.header("content-length").is_none() {
            builder = builder.header("Content-Length", request.body.len().to_string());
        }
        let http_request = builder.body(body).map_err(|e| {
            TransportError::new(TransportErrorKind::Other, format!("invalid request: {e}"))
        })?;

        let mut response = self.agent.run(http_request).map_err(map_ureq_error)?;

        let status = response.status().as_u16();
        let gzipped = response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let headers = response
            .headers()
            .iter()
            // A decoded body has neither the encoding nor the length it
            // came with.
            .filter(|(name, _)| {
                !gzipped
                    || !(name.as_str().eq_ignore_ascii_case("content-encoding")
                        || name.as_str().eq_ignore_ascii_case("content-length"))
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        // A body of known length is read into a buffer of that size: a pull
        // page of many megabytes grown by doubling would hold up to twice
        // its size, and leave the allocator holes to fill. A compressed body
        // (its decoded length unknown) grows as it comes.
        let capacity = match response.body().content_length() {
            Some(n) if !gzipped => usize::try_from(n.min(MAX_PRESIZE)).unwrap_or(0),
            _ => 0,
        };
        let mut body = buffer;
        body.clear();
        body.reserve_exact(capacity);
        let mut wire = Counted {
            inner: response.body_mut().with_config().limit(u64::MAX).reader(),
            count: 0,
        };
        let read = if gzipped {
            io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&mut wire), &mut body)
        } else {
            io::Read::read_to_end(&mut wire, &mut body)
        };
        read.map_err(|e| map_ureq_error(ureq::Error::from(e)))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
            wire_bytes: gzipped.then_some(wire.count),
        })
    }
}

/// A reader that counts the bytes read through it (a body as it came on
/// the wire, before it is decoded).
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: io::Read> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// The largest buffer reserved from a `Content-Length` before any byte
/// arrives (a longer body still grows past it).
const MAX_PRESIZE: u64 = 64 * 1024 * 1024;

/// Folds a ureq error into a [`TransportError`]. The message is ureq's own
/// text, which never holds request headers (so no token).
fn map_ureq_error(error: ureq::Error) -> TransportError {
    let kind = match &error {
        // A connection never made is no stall: the server was not reached.
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            TransportErrorKind::Connect
        }
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(e) => io_error_kind(e),
        // Malformed HTTP or a chunked body cut short: the connection broke.
        ureq::Error::Protocol(_) | ureq::Error::BodyStalled => TransportErrorKind::Io,
        ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired => TransportErrorKind::Tls,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, error.to_string())
}

fn io_error_kind(e: &io::Error) -> TransportErrorKind {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused
        | K::AddrNotAvailable
        | K::NetworkUnreachable
        | K::HostUnreachable
        | K::NetworkDown => TransportErrorKind::Connect,
        K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
        // rustls reports handshake and record failures as InvalidData I/O
        // errors; nothing else in this ureq configuration produces that kind
        // (no charset or decompression features).
        K::InvalidData => TransportErrorKind::Tls,
        _ => TransportErrorKind::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    fn transport() -> UreqTransport {
        UreqTransport::new(HttpConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            gzip: true,
        })
        .unwrap()
    }

    /// A server that sends its headers and part of the body, then keeps the
    /// socket open: the read timeout ends the call, not the whole-call one.
    #[test]
    fn a_stalled_answer_ends_at_the_read_timeout() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf);
            sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"Result\":tr")
                .unwrap();
            sock.flush().unwrap();
            std::thread::sleep(Duration::from_secs(3));
        });
        let t = UreqTransport::new(HttpConfig {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            read_timeout: Duration::from_millis(300),
            gzip: true,
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = t
            .send(&request(format!("http://127.0.0.1:{port}/x")))
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
        server.join().unwrap();
    }

    fn request(url: String) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("Authorization".into(), "Bearer t0k".into()),
            ],
            body: br#"{"a":1}"#.to_vec(),
        }
    }

    /// Serves one connection: reads the request head and body, then writes
    /// `reply` and closes. Returns the raw request it read.
    fn serve_once(reply: &'static [u8]) -> (String, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/API/v3/Sync/Test", listener.local_addr().unwrap());
        let handle = thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the head is complete and the 7-byte body has arrived.
            loop {
                let n = socket.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
                if let Some(pos) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    if seen.len() >= pos + 4 + 7 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket.write_all(reply).unwrap();
            socket.flush().unwrap();
            seen
        });
        (url, handle)
    }

    /// A body sent with progress goes out with its length declared (not
    /// chunked), whole, and the count moves piece by piece up to its end.
    #[test]
    fn a_reported_body_declares_its_length_and_tells_its_progress() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/API/v3/Sync/Upload",
            listener.local_addr().unwrap()
        );
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let server = thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 8192];
            let head_end = loop {
                let n = socket.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the head ended");
                seen.extend_from_slice(&buf[..n]);
                if let Some(p) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
            };
            while seen.len() < head_end + 100_000 {
                let n = socket.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the body ended");
                seen.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .unwrap();
            let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
            (head, seen[head_end..].to_vec())
        });
        let t = UreqTransport::new(HttpConfig::default()).unwrap();
        let told = std::sync::Mutex::new(Vec::new());
        let mut req = request(url);
        req.body = body.clone();
        let answer = t
            .send_reporting(&req, &|n| told.lock().unwrap().push(n))
            .unwrap();
        assert_eq!(answer.status, 200);
        let (head, got) = server.join().unwrap();
        assert!(head.contains("content-length: 100000"), "{head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(got, body);
        let told = told.into_inner().unwrap();
        assert!(told.len() >= 6, "{told:?}");
        assert!(told.windows(2).all(|w| w[0] < w[1]), "{told:?}");
        assert_eq!(told.last(), Some(&100_000));
    }

    /// A buffer handed in for the body is cleared and reused: the answer
    /// holds only the new body, in the same allocation when it fits.
    #[test]
    fn a_reused_buffer_holds_only_the_new_body() {
        let (url, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"Result\":1}",
        );
        let mut old = b"an older page, longer than the new one".to_vec();
        old.reserve(4096);
        let at = old.as_ptr();
        let response = transport().send_into(&request(url), old).unwrap();
        server.join().unwrap();
        assert_eq!(response.body, br#"{"Result":1}"#);
        assert_eq!(response.body.as_ptr(), at, "the same allocation");
    }

    /// A gzip answer is asked for, decoded, and its bytes on the wire
    /// told; a plain one tells none.
    #[test]
    fn a_gzip_answer_is_decoded_and_its_wire_bytes_counted() {
        use std::io::Write as _;
        let plain = br#"{"Result":true,"Data":"a page of many repeated words words words words"}"#;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        enc.write_all(plain).unwrap();
        let zipped = enc.finish().unwrap();
        let mut reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            zipped.len()
        )
        .into_bytes();
        reply.extend_from_slice(&zipped);
        let (url, server) = serve_once(reply.leak());
        let response = transport().send(&request(url)).unwrap();
        let seen = String::from_utf8_lossy(&server.join().unwrap()).to_ascii_lowercase();
        assert!(seen.contains("accept-encoding: gzip"), "{seen}");
        assert_eq!(response.body, plain);
        assert_eq!(response.wire_bytes, Some(zipped.len() as u64));
        assert_eq!(response.header("content-encoding"), None);
        assert_eq!(response.header("content-length"), None);

        let (url, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"Result\":1}",
        );
        let response = transport().send(&request(url)).unwrap();
        server.join().unwrap();
        assert_eq!((response.wire_bytes, response.wire_len()), (None, 12));
    }

    #[test]
    fn smoke_any_status_is_a_response() {
        let (url, server) = serve_once(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\nTrackingId: abc-1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: close\r\n\r\n<html></ht",
        );
        let response = transport().send(&request(url)).unwrap();
        let raw = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            raw.starts_with("POST /API/v3/Sync/Test HTTP/1.1\r\n"),
            "{raw}"
        );
        assert!(raw
            .to_ascii_lowercase()
            .contains("authorization: bearer t0k"));
        assert!(raw.ends_with(r#"{"a":1}"#));
        assert_eq!(response.status, 503);
        assert_eq!(response.tracking_id(), Some("abc-1"));
        let cookies = response
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .count();
        assert_eq!(cookies, 2);
        assert_eq!(response.body, b"<html></ht");
    }

    #[test]
    fn body_cut_mid_way_is_an_io_error() {
        let (url, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"success\":true,\"da",
        );
        let err = transport().send(&request(url)).unwrap_err();
        server.join().unwrap();
        assert_eq!(err.kind, TransportErrorKind::Io, "{err}");
    }

    #[test]
    fn connection_refused_is_a_connect_error() {
        // Bind, learn the port, and close: nothing listens there any more.
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = transport()
            .send(&request(format!("http://127.0.0.1:{port}/x")))
            .unwrap_err();
        assert_eq!(err.kind, TransportErrorKind::Connect, "{err}");
    }

    #[test]
    fn zero_timeouts_are_refused() {
        let r = UreqTransport::new(HttpConfig {
            connect_timeout: Duration::ZERO,
            timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            gzip: true,
        });
        assert!(matches!(r, Err(Error::Config(_))));
    }
}
