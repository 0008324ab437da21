//! A fault-injecting HTTP proxy on loopback (issue 12, part 4): it sits
//! between engines using their real HTTP stack and the reference server,
//! and, seeded, resets connections, loses answers after the server applied
//! the request, cuts bodies, stalls answers mid-body, delays, answers an
//! HTML 503 or a 429 with `Retry-After`, and plays the real dialect's hostile
//! save answers (applied, then refused as a whole with no per-record result;
//! results that repeat `Index: 1` without client ids). One thread per client connection (keep-alive honoured);
//! each request is forwarded on a fresh upstream connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy did, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests seen.
    pub requests: u64,
    /// Connections closed before the request was forwarded.
    pub resets: u64,
    /// Answers dropped after the server applied the request.
    pub lost_after_apply: u64,
    /// Answers cut in the middle of the body.
    pub cut: u64,
    /// Requests delayed.
    pub delayed: u64,
    /// HTML 503 pages served instead of forwarding.
    pub html_503: u64,
    /// 429s served instead of forwarding.
    pub rate_limited: u64,
    /// Answers stalled mid-body (headers and half of it, then nothing).
    pub stalled: u64,
    /// Save answers replaced by a hostile one after the server applied
    /// the save.
    pub hostile_saves: u64,
}

impl ProxyStats {
    /// Every fault injected.
    pub fn faults(&self) -> u64 {
        self.resets
            + self.lost_after_apply
            + self.cut
            + self.delayed
            + self.html_503
            + self.rate_limited
            + self.stalled
            + self.hostile_saves
    }
}

struct Shared {
    upstream: SocketAddr,
    rng: Mutex<fastrand::Rng>,
    /// Probability that a request meets a fault (0 heals the link).
    rate: Mutex<f64>,
    stats: Mutex<ProxyStats>,
    stop: AtomicBool,
    connections: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

enum Plan {
    Forward,
    Reset,
    LoseAfterApply,
    Cut,
    Delay(Duration),
    Html503,
    RateLimit,
    Stall,
    RefuseAfterApply,
    RepeatIndex,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`, faults drawn from `seed` at `rate`.
    pub fn start(upstream: SocketAddr, seed: u64, rate: f64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            rate: Mutex::new(rate),
            stats: Mutex::new(ProxyStats::default()),
            stop: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                s.connections.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(&s, conn));
            }
        });
        Ok(FaultProxy { addr, shared })
    }

    /// The base URL engines use (`http://127.0.0.1:<port>/API/v3`).
    pub fn base_url(&self) -> String {
        format!("http://{}/API/v3", self.addr)
    }

    /// Sets the fault rate (0 heals the link).
    pub fn set_rate(&self, rate: f64) {
        *self.shared.rate.lock().unwrap_or_else(|e| e.into_inner()) = rate;
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn plan(s: &Shared) -> Plan {
    let rate = *s.rate.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = s.rng.lock().unwrap_or_else(|e| e.into_inner());
    if rng.f64() >= rate {
        return Plan::Forward;
    }
    match rng.u8(0..9) {
        0 => Plan::Reset,
        1 => Plan::LoseAfterApply,
        2 => Plan::Cut,
        3 => Plan::Delay(Duration::from_millis(rng.u64(1..30))),
        4 => Plan::Html503,
        5 => Plan::RateLimit,
        // A stall costs the engine its read timeout: one in four draws.
        6 if rng.u8(0..4) == 0 => Plan::Stall,
        6 => Plan::Forward,
        7 => Plan::RefuseAfterApply,
        _ => Plan::RepeatIndex,
    }
}

/// One HTTP message read off a stream: its head and its body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

/// Reads a request or response with a `Content-Length` body (the only
/// framing the engine and the reference server use). None at a clean end.
fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Message>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        if let Some((name, value)) = text.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("head too long"));
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(Some(Message { head, body }))
}

fn forward(s: &Shared, request: &Message) -> std::io::Result<Message> {
    let up = TcpStream::connect(s.upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(10)))?;
    up.set_nodelay(true)?;
    let mut w = up.try_clone()?;
    w.write_all(&[&request.head[..], &request.body[..]].concat())?;
    let mut r = BufReader::new(up);
    read_message(&mut r)?.ok_or_else(|| std::io::Error::other("upstream closed"))
}

/// True for a save request of the real dialect (`SaveAllData`, not the
/// documented `SaveAllDataV2`).
fn is_save(request: &Message) -> bool {
    let line = request
        .head
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let line = String::from_utf8_lossy(line).to_ascii_lowercase();
    line.contains("/sync/savealldata ") || line.contains("/sync/savealldata?")
}

/// `request` without its `Accept-Encoding` (so the answer comes plain).
fn plain(request: &Message) -> Message {
    let head = String::from_utf8_lossy(&request.head)
        .split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("accept-encoding:"))
        .collect::<String>();
    Message {
        head: head.into_bytes(),
        body: request.body.clone(),
    }
}

/// A 200 answer with this JSON body.
fn json_answer(body: Vec<u8>) -> Message {
    Message {
        head: format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body,
    }
}

fn count(s: &Shared, f: impl FnOnce(&mut ProxyStats)) {
    f(&mut s.stats.lock().unwrap_or_else(|e| e.into_inner()));
}

fn serve(s: &Shared, client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = client.set_nodelay(true);
    let Ok(mut out) = client.try_clone() else {
        return;
    };
    let mut r = BufReader::new(client);
    while let Ok(Some(request)) = read_message(&mut r) {
        if s.stop.load(Ordering::SeqCst) {
            break;
        }
        count(s, |c| c.requests += 1);
        let reply = match plan(s) {
            Plan::Forward => forward(s, &request),
            Plan::Reset => {
                count(s, |c| c.resets += 1);
                break;
            }
            Plan::LoseAfterApply => {
                count(s, |c| c.lost_after_apply += 1);
                let _ = forward(s, &request);
                break;
            }
            Plan::Cut => {
                count(s, |c| c.cut += 1);
                if let Ok(m) = forward(s, &request) {
                    let _ = out.write_all(&m.head);
                    let _ = out.write_all(&m.body[..m.body.len() / 2]);
                }
                break;
            }
            Plan::Stall => {
                count(s, |c| c.stalled += 1);
                if let Ok(m) = forward(s, &request) {
                    let _ = out.write_all(&m.head);
                    let _ = out.write_all(&m.body[..m.body.len() / 2]);
                }
                // Nothing more, until the client gives up.
                let mut rest = Vec::new();
                let _ = r.read_to_end(&mut rest);
                break;
            }
            Plan::RefuseAfterApply | Plan::RepeatIndex if !is_save(&request) => {
                forward(s, &request)
            }
            Plan::RefuseAfterApply => {
                count(s, |c| c.hostile_saves += 1);
                forward(s, &request).map(|_| {
                    json_answer(
                        r#"{"Result":false,"Message":"خطا در ذخیره اطلاعات"}"#
                            .as_bytes()
                            .to_vec(),
                    )
                })
            }
            Plan::RepeatIndex => {
                count(s, |c| c.hostile_saves += 1);
                forward(s, &plain(&request)).map(|m| json_answer(crate::sim::repeat_index(&m.body)))
            }
            Plan::Delay(d) => {
                count(s, |c| c.delayed += 1);
                std::thread::sleep(d);
                forward(s, &request)
            }
            Plan::Html503 => {
                count(s, |c| c.html_503 += 1);
                let body = "<html><body><h1>503 Service Unavailable</h1>nginx</body></html>";
                Ok(Message {
                    head: format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    body: body.as_bytes().to_vec(),
                })
            }
            Plan::RateLimit => {
                count(s, |c| c.rate_limited += 1);
                Ok(Message {
                    head: b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n"
                        .to_vec(),
                    body: Vec::new(),
                })
            }
        };
        match reply {
            Ok(m) => {
                if out.write_all(&[&m.head[..], &m.body[..]].concat()).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}
