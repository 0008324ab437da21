//! Transports used by the benchmarks: [`Timed`] wraps any transport, adds up
//! the wall time spent inside it (server plus network, so the client's own
//! share of a sync is the total minus this) and can keep every
//! pull response; [`Replay`] answers from such kept responses, so
//! the engine's apply path can be measured with the server's cost excluded.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rowsync::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};

/// A pull call of either dialect (`GetAllData`, `GetAllDataV2`).
fn is_pull(url: &str) -> bool {
    url.ends_with("GetAllDataV2") || url.ends_with("GetAllData")
}

/// Responses kept from a run: the login answer and the pages in order.
#[derive(Default, Clone)]
pub struct Recording {
    /// The login response.
    pub login: Option<HttpResponse>,
    /// Every pull response, in the order received.
    pub pages: Vec<HttpResponse>,
}

impl Recording {
    /// Bytes of page bodies.
    pub fn page_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.body.len()).sum()
    }
}

/// Times (and optionally records) the calls of an inner transport.
pub struct Timed {
    inner: Arc<dyn Transport>,
    nanos: AtomicU64,
    calls: AtomicU64,
    record: bool,
    kept: Mutex<Recording>,
}

impl Timed {
    /// Wraps `inner`; keeps responses when `record`.
    pub fn new(inner: Arc<dyn Transport>, record: bool) -> Arc<Timed> {
        Arc::new(Timed {
            inner,
            nanos: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            record,
            kept: Mutex::new(Recording::default()),
        })
    }

    /// Total time spent inside the inner transport.
    pub fn spent(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// Calls made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Takes what was recorded.
    pub fn take(&self) -> Recording {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Transport for Timed {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        self.send_into(request, Vec::new())
    }

    fn send_into(
        &self,
        request: &HttpRequest,
        buffer: Vec<u8>,
    ) -> Result<HttpResponse, TransportError> {
        let t = Instant::now();
        let r = self.inner.send_into(request, buffer);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.record {
            if let Ok(resp) = &r {
                let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
                if is_pull(&request.url) {
                    kept.pages.push(resp.clone());
                } else if request.url.contains("Login") {
                    kept.login = Some(resp.clone());
                }
            }
        }
        r
    }
}

/// Answers login and pages from a [`Recording`], in order, with no server.
pub struct Replay {
    rec: Arc<Recording>,
    next: AtomicUsize,
}

impl Replay {
    /// A replay of `rec` from its first page.
    pub fn new(rec: Arc<Recording>) -> Arc<Replay> {
        Arc::new(Replay {
            rec,
            next: AtomicUsize::new(0),
        })
    }
}

impl Transport for Replay {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let missing = |what: &str| TransportError::new(TransportErrorKind::Io, what.to_string());
        if request.url.contains("Login") {
            return self
                .rec
                .login
                .clone()
                .ok_or_else(|| missing("no recorded login"));
        }
        if is_pull(&request.url) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            return self
                .rec
                .pages
                .get(i)
                .cloned()
                .ok_or_else(|| missing("replay ran out of recorded pages"));
        }
        Err(missing("replay only answers login and pulls"))
    }
}
