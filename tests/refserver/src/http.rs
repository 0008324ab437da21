//! The HTTP/1.1 listener of the reference server: a small server on
//! `std::net` (one thread per connection, keep-alive, `Content-Length` and
//! chunked request bodies, `Expect: 100-continue`). It is hand-written rather
//! than tiny_http because the fault kinds need to close a keep-alive
//! connection at will (before the response, or in the middle of it), which
//! tiny_http cannot do: its connection thread keeps the socket open.

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
const MAX_LINE: u64 = 16 * 1024;
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

/// Reads one line (with its `\n`) into `buf`, tolerating read timeouts until
/// `limit` has passed since `since`. `Ok(false)` at a clean end of stream.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    buf: &mut Vec<u8>,
    stop: &AtomicBool,
    since: Instant,
    limit: Duration,
) -> io::Result<bool> {
    loop {
        let room = MAX_LINE.saturating_sub(buf.len() as u64);
        match reader.by_ref().take(room).read_until(b'\n', buf) {
            Ok(_) if buf.ends_with(b"\n") => return Ok(true),
            Ok(0) if buf.is_empty() => return Ok(false),
            Ok(_) if buf.len() as u64 >= MAX_LINE => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"))
            }
            Ok(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Err(e) if is_timeout(&e) => {
                if stop.load(Ordering::SeqCst) && buf.is_empty() {
                    return Ok(false);
                }
                if since.elapsed() > limit {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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
    let body = format!("{{\"success\":false,\"code\":400,\"message\":\"{why}\",\"data\":null}}");
    let _ = write!(
        w,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
        // Request line (skipping stray empty lines between requests).
        let idle_since = Instant::now();
        let mut line = Vec::new();
        loop {
            line.clear();
            if !read_line(&mut reader, &mut line, stop, idle_since, IDLE_LIMIT)? {
                return Ok(());
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        let mut parts = text.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bad_request(&mut writer, "malformed request line");
            return Ok(());
        };
        if !version.starts_with("HTTP/1.") {
            bad_request(&mut writer, "unsupported HTTP version");
            return Ok(());
        }
        let mut head = Head {
            method: method.to_string(),
            target: target.to_string(),
            http10: version == "HTTP/1.0",
            headers: Vec::new(),
        };
        let started = Instant::now();
        loop {
            let mut h = Vec::new();
            if !read_line(&mut reader, &mut h, stop, started, STALL_LIMIT)? {
                return Ok(());
            }
            let h = String::from_utf8_lossy(&h);
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if head.headers.len() >= MAX_HEADERS {
                bad_request(&mut writer, "too many headers");
                return Ok(());
            }
            let Some((k, v)) = h.split_once(':') else {
                bad_request(&mut writer, "malformed header");
                return Ok(());
            };
            head.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }

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
                let mut size_line = Vec::new();
                if !read_line(
                    &mut reader,
                    &mut size_line,
                    stop,
                    Instant::now(),
                    STALL_LIMIT,
                )? {
                    return Ok(());
                }
                let s = String::from_utf8_lossy(&size_line);
                let hex = s.trim().split(';').next().unwrap_or("");
                let Ok(size) = usize::from_str_radix(hex, 16) else {
                    bad_request(&mut writer, "malformed chunk size");
                    return Ok(());
                };
                if size == 0 {
                    // Trailers until an empty line.
                    loop {
                        let mut t = Vec::new();
                        if !read_line(&mut reader, &mut t, stop, Instant::now(), STALL_LIMIT)? {
                            return Ok(());
                        }
                        if t.iter().all(u8::is_ascii_whitespace) {
                            break;
                        }
                    }
                    break;
                }
                total = total.saturating_add(size);
                if total > MAX_DRAIN {
                    bad_request(&mut writer, "request body too large");
                    return Ok(());
                }
                read_body(&mut reader, size, keep, &mut body)?;
                let mut crlf = Vec::new();
                read_line(&mut reader, &mut crlf, stop, Instant::now(), STALL_LIMIT)?;
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
                write_response(&mut writer, &r, close, None)?;
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
                let half = r.body.len() / 2;
                let _ = write_response(&mut writer, &r, close, Some(half));
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
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
) -> io::Result<()> {
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
    w.flush()
}
