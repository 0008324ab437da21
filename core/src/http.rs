//! The default [`Transport`]: blocking HTTP over ureq 3 with rustls. It only
//! moves bytes: every HTTP status comes back as a response, bodies are read
//! whole with no size limit, redirects are not followed, and ureq's errors are
//! folded into [`TransportErrorKind`]. This file also owns base-URL validation
//! ([`validate_base_url`]): HTTPS only, plain HTTP to loopback hosts only.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
            // `gzip` (decoded as the body is read) unless turned off.
            .accept_encoding(if config.gzip {
                ureq::config::AutoHeaderValue::Default
            } else {
                ureq::config::AutoHeaderValue::None
            })
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
        if declare_length && request.header("content-length").is_none() {
            builder = builder.header("Content-Length", request.body.len().to_string());
        }
        let http_request = builder.body(body).map_err(|e| {
            TransportError::new(TransportErrorKind::Other, format!("invalid request: {e}"))
        })?;

        let mut response = self.agent.run(http_request).map_err(map_ureq_error)?;

        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
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
        let encoded = response.headers().contains_key("content-encoding");
        let capacity = match response.body().content_length() {
            Some(n) if !encoded => usize::try_from(n.min(MAX_PRESIZE)).unwrap_or(0),
            _ => 0,
        };
        let mut body = buffer;
        body.clear();
        body.reserve_exact(capacity);
        std::io::Read::read_to_end(
            &mut response.body_mut().with_config().limit(u64::MAX).reader(),
            &mut body,
        )
        .map_err(|e| map_ureq_error(ureq::Error::from(e)))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
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

/// `url` made absolute against the origin (scheme and host) of `base`, the
/// server's base URL: the real server's picture URLs may be relative to its
/// origin (WIRE.md section 7). An absolute `http(s)` URL stays as it is;
/// `//host/path` takes the base's scheme; `/path` and `path` hang from the
/// origin. Spaces, non-ASCII letters (Persian file names) and other bytes
/// no URL may hold are percent-encoded; existing `%XX` escapes are kept.
pub fn absolute_url(base: &str, url: &str) -> Result<String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::Config("an empty URL cannot be made absolute".into()));
    }
    let Some((scheme, rest)) = base.split_once("://") else {
        return Err(Error::Config(format!("base URL `{base}` has no scheme")));
    };
    let origin = match rest.find('/') {
        Some(i) => &base[..scheme.len() + 3 + i],
        None => base,
    };
    let lower = url.to_ascii_lowercase();
    let whole = if lower.starts_with("http://") || lower.starts_with("https://") {
        url.to_string()
    } else if let Some(rest) = url.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if url.starts_with('/') {
        format!("{origin}{url}")
    } else {
        format!("{origin}/{url}")
    };
    let mut out = String::with_capacity(whole.len());
    for c in whole.chars() {
        if c.is_ascii_graphic()
            && !matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
        {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// Checks a base URL such as `https://host/API/v3`: scheme `https`, or `http`
/// only when the host is loopback (`127.0.0.0/8`, `::1`, `localhost`); a
/// valid host name or IP literal; an optional port in 1..=65535; an optional
/// path; no user info, query, fragment, whitespace or control characters.
/// Anything else is `Error::Config`.
pub fn validate_base_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Config(format!("base URL `{url}`: {why}")));
    if url.is_empty() {
        return Err(Error::Config("base URL is empty".to_string()));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains whitespace or control characters");
    }
    if !url.is_ascii() {
        return bad("contains non-ASCII characters (use punycode and percent-encoding)");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("missing scheme (expected https://)");
    };
    let secure = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return bad("scheme must be https");
    };
    if rest.contains(['?', '#']) {
        return bad("must not have a query or fragment");
    }
    let (authority, _path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return bad("must not contain user info");
    }
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let Some((inside, after)) = after_bracket.split_once(']') else {
            return bad("unclosed `[` in the host");
        };
        let Ok(v6) = inside.parse::<Ipv6Addr>() else {
            return bad("invalid IPv6 address");
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad("unexpected text after the IPv6 address"),
            },
        };
        (Host::Ip(IpAddr::V6(v6)), port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        if let Ok(v4) = name.parse::<Ipv4Addr>() {
            (Host::Ip(IpAddr::V4(v4)), port)
        } else if is_valid_host_name(name) {
            (Host::Name(name), port)
        } else {
            return bad("invalid host");
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && matches!(port.parse::<u16>(), Ok(p) if p != 0);
        if !valid {
            return bad("invalid port");
        }
    }
    if !secure && !host.is_loopback() {
        return bad("plain http:// is only allowed for loopback hosts; use https://");
    }
    Ok(())
}

enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

impl Host<'_> {
    fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(IpAddr::V4(v4)) => v4.is_loopback(),
            Host::Ip(IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Host::Name(name) => {
                let name = name.strip_suffix('.').unwrap_or(name);
                name.eq_ignore_ascii_case("localhost")
            }
        }
    }
}

/// An RFC 1123 host name: dot-separated labels of letters, digits, `-` (and
/// `_`, which real intranets use), no label empty, starting or ending with
/// `-`, or longer than 63; one trailing dot allowed; 253 characters at most.
fn is_valid_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    // An all-numeric dotted name that is not a valid IPv4 address (`300.1.1.1`).
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    fn ok(url: &str) {
        if let Err(e) = validate_base_url(url) {
            panic!("{url} refused: {e}");
        }
    }

    fn refused(url: &str) {
        match validate_base_url(url) {
            Err(Error::Config(_)) => {}
            other => panic!("{url}: expected Config error, got {other:?}"),
        }
    }

    #[test]
    fn picture_urls_are_made_absolute_against_the_servers_origin() {
        let base = "https://mahakacc.mahaksoft.com/API/v3";
        let abs = |u: &str| absolute_url(base, u).unwrap();
        assert_eq!(
            abs("/Files/Pictures/12.jpg"),
            "https://mahakacc.mahaksoft.com/Files/Pictures/12.jpg"
        );
        assert_eq!(
            abs("Files/12.jpg"),
            "https://mahakacc.mahaksoft.com/Files/12.jpg"
        );
        assert_eq!(
            abs("//cdn.example.com/a.png"),
            "https://cdn.example.com/a.png"
        );
        assert_eq!(
            abs(" HTTP://other.example/x.jpg "),
            "HTTP://other.example/x.jpg"
        );
        assert_eq!(
            abs("/Files/عکس 1.jpg"),
            "https://mahakacc.mahaksoft.com/Files/%D8%B9%DA%A9%D8%B3%201.jpg"
        );
        assert_eq!(
            abs("/a%20b.jpg?v=2"),
            "https://mahakacc.mahaksoft.com/a%20b.jpg?v=2"
        );
        assert_eq!(
            absolute_url("http://127.0.0.1:8080", "x.jpg").unwrap(),
            "http://127.0.0.1:8080/x.jpg"
        );
        assert!(matches!(absolute_url(base, "  "), Err(Error::Config(_))));
        assert!(matches!(absolute_url("", "/x"), Err(Error::Config(_))));
    }

    #[test]
    fn https_urls_are_accepted() {
        ok("https://example.com");
        ok("https://example.com/");
        ok("https://example.com/API/v3");
        ok("HTTPS://Example.COM:8443/API/v3/");
        ok("https://10.0.0.5/API/v3");
        ok("https://[2001:db8::1]:443/API");
        ok("https://my_host.intranet./api");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        ok("http://127.0.0.1:8080/API/v3");
        ok("http://127.0.0.5");
        ok("http://127.255.255.254/x");
        ok("http://[::1]:8080");
        ok("http://[::1]");
        ok("http://[::ffff:127.0.0.1]:80");
        ok("http://localhost");
        ok("http://LOCALHOST:3000/API/v3");
        refused("http://example.com");
        refused("http://example.com/API/v3");
        refused("http://10.0.0.1:8080");
        refused("http://128.0.0.1");
        refused("http://[2001:db8::1]");
        refused("http://localhost.example.com");
        refused("http://mylocalhost");
    }

    #[test]
    fn garbage_is_refused() {
        for url in [
            "",
            "example.com",
            "ftp://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com:",
            "https://example.com:0",
            "https://example.com:65536",
            "https://example.com:80a",
            "https://example.com:-1",
            "https://[::1",
            "https://[::1]x",
            "https://[zz::1]",
            "https://user:pw@example.com",
            "https://example.com/api?x=1",
            "https://example.com/#frag",
            "https://-example.com",
            "https://exa..mple.com",
            "https://300.1.1.1",
            "https://exämple.com",
            "https://example.com\n",
            "https://a:b:c",
            " https://example.com",
        ] {
            refused(url);
        }
    }

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
