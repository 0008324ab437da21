//! The HTTP/1.1 listener of the reference server: a small server on
//! `std::net` (one thread per connection, keep-alive, `Content-Length` and
//! chunked request bodies, `Expect: 100-continue`). The sockets are handled
//! here rather than by tiny_http because the fault kinds need to close a
//! keep-alive connection at will (before the response, or in the middle of
//! it), which tiny_http cannot do: its connection thread keeps the socket
//! open. The parsing is httparse's: the request head (`Request::parse`), the
//! chunk-size lines (`parse_chunk_size`) and the trailers (`parse_headers`);
//! this file only frames the bytes and bounds their size.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Outcome, RefServer, ServerConfig, ServerError};
use rowsync::{HttpRequest, HttpResponse};

const POLL: Duration = Duration::from_millis(100);
const IDLE_LIMIT: Duration = Duration::from_secs(120);
const STALL_LIMIT: Duration = Duration::from_secs(30);
const MAX_CONNECTIONS: usize = 1024;
/// Longest request head (request line and headers) accepted; longer ones
/// are answered 431.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with its extensions) or trailer section.
const MAX_CHUNK_LINE: usize = 16 * 1024;
const MAX_HEADERS: usize = 128;
/// Bodies beyond the configured limit are read and thrown away up to this
/// size (so the client sees the 400), beyond it the connection is closed.
const MAX_DRAIN: usize = 256 * 1024 * 1024;

/// The reference server listening on a TCP port. Stops when dropped.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    server: Arc<RefServer>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl RunningServer {
    /// Opens a server with `config` and listens on `127.0.0.1`, on a free port.
    pub fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        Self::start_on(config, "127.0.0.1:0")
    }

    /// Opens a server with `config` and listens on `addr` (`"127.0.0.1:8080"`).
    pub fn start_on(config: ServerConfig, addr: &str) -> Result<RunningServer, ServerError> {
        Self::serve(RefServer::open(config)?, addr)
    }

    /// Listens on `addr` for an existing server (so one server can be
    /// reached over HTTP and in-process at once).
    pub fn serve(server: Arc<RefServer>, addr: &str) -> Result<RunningServer, ServerError> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (server, stop, conns) = (server.clone(), stop.clone(), conns.clone());
            std::thread::Builder::new()
                .name("refserver-accept".into())
                .spawn(move || accept_loop(listener, server, stop, conns))?
        };
        Ok(RunningServer {
            addr,
            server,
            stop,
            accept: Some(accept),
            conns,
        })
    }

    /// The base URL to give clients: `http://127.0.0.1:PORT/API/v3`.
    pub fn base_url(&self) -> String {
        format!("http://{}/API/v3", self.addr)
    }

    /// The socket address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server behind the listener (admin, faults, request log).
    pub fn server(&self) -> &Arc<RefServer> {
        &self.server
    }

    /// Stops listening, closes idle connections and waits for the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
        let handles: Vec<_> =
            std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: TcpListener,
    server: Arc<RefServer>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (server, stop, active2) = (server.clone(), stop.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("refserver-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &server, &stop);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        let mut list = conns.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|h| !h.is_finished());
        match spawned {
            Ok(h) => list.push(h),
            Err(_) => {
                active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What [`read_framed`] got.
enum Frame<T> {
    /// `parse` accepted the bytes read; exactly those were consumed.
    Done(T),
    /// The peer closed the connection (or the server is stopping) before a
    /// whole frame arrived.
    Closed,
    /// More than the allowed bytes arrived without a whole frame.
    TooLarge,
    /// `parse` refused the bytes, for this reason.
    Bad(&'static str),
}

/// Reads from `reader` until `parse` accepts the bytes read so far, and
/// consumes exactly the bytes it used (what follows stays in `reader`).
/// `parse` answers `Ok(None)` while the frame is incomplete. Read timeouts
/// are tolerated for `idle` while nothing but empty lines has arrived, then
/// for [`STALL_LIMIT`] from the first byte.
fn read_framed<T>(
    reader: &mut BufReader<TcpStream>,
    max: usize,
    stop: &AtomicBool,
    idle: Duration,
    mut parse: impl FnMut(&[u8]) -> Result<Option<(usize, T)>, &'static str>,
) -> io::Result<Frame<T>> {
    let mut buf: Vec<u8> = Vec::new();
    let mut since = Instant::now();
    let mut started = false;
    loop {
        let avail = match reader.fill_buf() {
            Ok([]) => return Ok(Frame::Closed),
            Ok(avail) => avail,
            Err(e) if is_timeout(&e) => {
                if stop.load(Ordering::SeqCst) && !started {
                    return Ok(Frame::Closed);
                }
                if since.elapsed() > if started { STALL_LIMIT } else { idle } {
                    return Err(e);
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let before = buf.len();
        let take = avail.len().min(max + 1 - before);
        buf.extend_from_slice(&avail[..take]);
        if !started && !buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            started = true;
            since = Instant::now();
        }
        match parse(&buf) {
            Ok(Some((used, value))) => {
                reader.consume(used - before);
                return Ok(Frame::Done(value));
            }
            Ok(None) if buf.len() > max => return Ok(Frame::TooLarge),
            Ok(None) => reader.consume(take),
            Err(why) => return Ok(Frame::Bad(why)),
        }
    }
}

/// httparse's reading of a whole request head, as owned values.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Head)>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::Version) => return Err("unsupported HTTP version"),
        Err(httparse::Error::TooManyHeaders) => return Err("too many headers"),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err("malformed header")
        }
        Err(_) => return Err("malformed request line"),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err("malformed request line");
    };
    let head = Head {
        method: method.to_string(),
        target: target.to_string(),
        http10: version == 0,
        headers: req
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value);
                (h.name.to_string(), value.trim().to_string())
            })
            .collect(),
    };
    Ok(Some((used, head)))
}

/// httparse's reading of a chunk-size line: the size of the chunk after it.
fn parse_chunk_line(buf: &[u8]) -> Result<Option<(usize, u64)>, &'static str> {
    match httparse::parse_chunk_size(buf) {
        Ok(httparse::Status::Complete(done)) => Ok(Some(done)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::InvalidChunkSize) => Err("malformed chunk size"),
    }
}

/// httparse's reading of the trailer section after the last chunk (the
/// trailers themselves are ignored).
fn parse_trailers(buf: &[u8]) -> Result<Option<(usize, ())>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete((used, _))) => Ok(Some((used, ()))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err("malformed chunk trailer"),
    }
}

/// The CRLF that ends the data of a chunk.
fn parse_chunk_end(buf: &[u8]) -> Result<Option<(usize, ())>, &'static str> {
    match buf {
        [b'\r', b'\n', ..] => Ok(Some((2, ()))),
        [] | [b'\r'] => Ok(None),
        _ => Err("malformed chunk: data longer than its size"),
    }
}

/// Reads exactly `n` bytes, keeping at most `keep` of them in `out`.
fn read_body(
    reader: &mut BufReader<TcpStream>,
    n: usize,
    keep: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut left = n;
    let mut chunk = [0u8; 64 * 1024];
    let mut last = Instant::now();
    while left > 0 {
        let want = left.min(chunk.len());
        match reader.read(&mut chunk[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(got) => {
                let room = keep.saturating_sub(out.len());
                out.extend_from_slice(&chunk[..got.min(room)]);
                left -= got;
                last = Instant::now();
            }
            Err(e) if is_timeout(&e) => {
                if last.elapsed() > STALL_LIMIT {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad_request(w: &mut TcpStream, why: &str) {
    refuse(w, 400, why);
}

/// Answers `status` with the error envelope and closes the connection.
fn refuse(w: &mut TcpStream, status: u16, why: &str) {
    let body =
        format!("{{\"success\":false,\"code\":{status},\"message\":\"{why}\",\"data\":null}}");
    let _ = write!(
        w,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = w.flush();
}

fn serve_connection(stream: TcpStream, server: &RefServer, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let local = stream.local_addr()?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    loop {
        // The request head (httparse skips stray empty lines between
        // requests).
        let head = match read_framed(&mut reader, MAX_HEAD, stop, IDLE_LIMIT, parse_head)? {
            Frame::Done(head) => head,
            Frame::Closed => return Ok(()),
            Frame::TooLarge => {
                refuse(&mut writer, 431, "request head too large");
                return Ok(());
            }
            Frame::Bad("too many headers") => {
                refuse(&mut writer, 431, "too many headers");
                return Ok(());
            }
            Frame::Bad(why) => {
                bad_request(&mut writer, why);
                return Ok(());
            }
        };

        let keep = server.config().max_body_bytes.saturating_add(1);
        let mut body = Vec::new();
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        if chunked {
            let mut total = 0usize;
            loop {
                let size = match read_framed(
                    &mut reader,
                    MAX_CHUNK_LINE,
                    stop,
                    STALL_LIMIT,
                    parse_chunk_line,
                )? {
                    Frame::Done(size) => size,
                    Frame::Closed => return Ok(()),
                    Frame::TooLarge => {
                        bad_request(&mut writer, "malformed chunk size");
                        return Ok(());
                    }
                    Frame::Bad(why) => {
                        bad_request(&mut writer, why);
                        return Ok(());
                    }
                };
                if size == 0 {
                    match read_framed(
                        &mut reader,
                        MAX_CHUNK_LINE,
                        stop,
                        STALL_LIMIT,
                        parse_trailers,
                    )? {
                        Frame::Done(()) => break,
                        Frame::Closed => return Ok(()),
                        Frame::TooLarge => {
                            bad_request(&mut writer, "chunk trailers too large");
                            return Ok(());
                        }
                        Frame::Bad(why) => {
                            bad_request(&mut writer, why);
                            return Ok(());
                        }
                    }
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                total = total.saturating_add(size);
                if total > MAX_DRAIN {
                    bad_request(&mut writer, "request body too large");
                    return Ok(());
                }
                read_body(&mut reader, size, keep, &mut body)?;
                match read_framed(&mut reader, 2, stop, STALL_LIMIT, parse_chunk_end)? {
                    Frame::Done(()) => {}
                    Frame::Closed => return Ok(()),
                    Frame::TooLarge | Frame::Bad(_) => {
                        bad_request(&mut writer, "malformed chunk");
                        return Ok(());
                    }
                }
            }
        } else if let Some(len) = head.header("content-length") {
            let Ok(len) = len.parse::<usize>() else {
                bad_request(&mut writer, "malformed Content-Length");
                return Ok(());
            };
            if len > MAX_DRAIN {
                bad_request(&mut writer, "request body too large");
                return Ok(());
            }
            read_body(&mut reader, len, keep, &mut body)?;
        }

        let gzip = server.config().gzip
            && head
                .header("accept-encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
        let close = match head.header("connection").map(str::to_ascii_lowercase) {
            Some(v) if v.contains("close") => true,
            Some(v) if v.contains("keep-alive") => false,
            _ => head.http10,
        };
        let host = head
            .header("host")
            .map(str::to_string)
            .unwrap_or_else(|| local.to_string());
        let url = if head.target.starts_with('/') {
            format!("http://{host}{}", head.target)
        } else {
            head.target.clone()
        };
        let request = HttpRequest {
            method: head.method,
            url,
            headers: head.headers,
            body,
        };
        match server.handle(&request) {
            Outcome::Respond(r) => {
                let r = if gzip { gzipped(r) } else { r };
                server.count_wire_bytes(write_response(&mut writer, &r, close, None)?);
                if close {
                    let _ = writer.shutdown(Shutdown::Write);
                    return Ok(());
                }
            }
            Outcome::DropConnection => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Outcome::CutResponse(r) => {
                let r = if gzip { gzipped(r) } else { r };
                let half = r.body.len() / 2;
                let _ = write_response(&mut writer, &r, close, Some(half));
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Outcome::StallResponse(r) => {
                let r = if gzip { gzipped(r) } else { r };
                let half = r.body.len() / 2;
                let _ = write_response(&mut writer, &r, close, Some(half));
                hold_until_closed(&mut writer, stop);
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

/// Longest a stalled answer holds its connection open.
const HOLD_LIMIT: Duration = Duration::from_secs(600);

/// Sends nothing more, reading (and dropping) whatever comes, until the
/// client closes the connection, the server stops, or [`HOLD_LIMIT`].
fn hold_until_closed(stream: &mut TcpStream, stop: &AtomicBool) {
    let started = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) && started.elapsed() < HOLD_LIMIT {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

/// Answers smaller than this go as they are.
const GZIP_FROM: usize = 1024;

/// `r` compressed with gzip (`Content-Encoding: gzip`), when it is worth it.
/// Level 1: the server must not become the bottleneck of a first sync.
fn gzipped(mut r: HttpResponse) -> HttpResponse {
    // Pictures are compressed already.
    let image = r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("image/"));
    if r.body.len() < GZIP_FROM || image {
        return r;
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(r.body.len() / 4),
        flate2::Compression::new(1),
    );
    let Ok(body) = enc.write_all(&r.body).and_then(|()| enc.finish()) else {
        return r;
    };
    r.body = body;
    r.headers
        .push(("Content-Encoding".to_string(), "gzip".to_string()));
    r
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Writes `r` with its full `Content-Length`, but only `cut` bytes of the
/// body when given.
fn write_response(
    w: &mut TcpStream,
    r: &HttpResponse,
    close: bool,
    cut: Option<usize>,
) -> io::Result<u64> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    head.push_str(if close || cut.is_some() {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    let body = match cut {
        Some(n) => &r.body[..n.min(r.body.len())],
        None => &r.body[..],
    };
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()?;
    Ok(out.len() as u64)
}
