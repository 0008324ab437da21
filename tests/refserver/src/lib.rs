//! The reference Mahak Sync API server of rowsync: the server the engine's
//! tests, demo and benchmarks talk to. It speaks two dialects
//! ([`Dialect`]): by default the real server's (`docs/WIRE.md`: MD5 login,
//! `GetAllData` by `from<Entity>Version`, partial `SaveAllData`, PascalCase
//! answers, the real server's habits as [`ServerConfig`] switches; see
//! `mahak.rs` and `schema.rs`), or the documented one of `docs/PROTOCOL.md`
//! (`LoginV2`, `GetAllDataV2`, `SaveAllDataV2`). It stores its data in
//! SQLite, lets a test play "another client's hand" through the admin API,
//! and injects faults on demand (seeded, so failures replay). It runs over
//! real HTTP ([`RunningServer`]) or in-process ([`InProcessTransport`]).
//!
//! This file owns the shared server object ([`RefServer`]), the outcome of
//! handling one request ([`Outcome`]), the request log, and the in-process
//! transport; the protocol itself is in `handler.rs`, `pull.rs` and `save.rs`.

mod admin;
mod auth;
mod cli;
mod config;
mod error;
mod faults;
mod generate;
mod handler;
mod http;
mod mahak;
mod pictures;
mod pull;
mod save;
mod schema;
mod store;
mod tasks;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rowsync::{
    Catalogue, HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind,
};
use rusqlite::Connection;

pub use admin::Admin;
pub use cli::{parse_cli, run_cli, CliOptions};
pub use config::{Dialect, PullObjects, ServerConfig};
pub use error::ServerError;
pub use faults::{Fault, FaultBody, FaultConfig, Faults, RetryAfter};
pub use http::RunningServer;
pub use mahak::{ALREADY_REGISTERED, LINE_NEEDS_DETAIL};
pub use pictures::{picture_hash, IMAGES_PATH};
pub use save::{CODE_CONFLICT, CODE_INTEGRITY, CODE_VALIDATION};
pub use tasks::{ReceivedDispute, StoredUpload};

/// Login refused: bad `databaseId` or `packageNumber`.
pub const CODE_BAD_DATABASE: i64 = 1001;
/// Login refused: bad username or password.
pub const CODE_BAD_CREDENTIALS: i64 = 1002;
/// Token missing, invalid or expired.
pub const CODE_BAD_TOKEN: i64 = 1003;

/// What the transport must do with a handled request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this response.
    Respond(HttpResponse),
    /// Close the connection without answering.
    DropConnection,
    /// Send the status line, the headers (with the full `Content-Length`) and
    /// only the first half of this response's body, then close.
    CutResponse(HttpResponse),
    /// Send the status line, the headers (with the full `Content-Length`) and
    /// the first half of this response's body, then nothing more, holding
    /// the connection open until the client gives up.
    StallResponse(HttpResponse),
}

/// One handled request, as kept in the in-memory log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// The `Trackingid` sent with the response (also set when none was sent).
    pub tracking_id: String,
    /// HTTP method.
    pub method: String,
    /// Endpoint name (`LoginV2`, `SaveAllDataV2`, `admin/...`) or the path.
    pub endpoint: String,
    /// Records per collection: sent (save) or returned (pull).
    pub counts: Vec<(String, usize)>,
    /// HTTP status sent; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// Envelope code sent, if any.
    pub code: Option<i64>,
    /// What happened, in words (`ok`, `rejected 2001: ...`, `dropped`).
    pub outcome: String,
    /// The fault injected, if any.
    pub fault: Option<String>,
    /// Time spent handling.
    pub elapsed: Duration,
}

/// The protocol handler and its storage: `Send + Sync`, shared via `Arc`.
pub struct RefServer {
    config: RwLock<ServerConfig>,
    catalogue: Catalogue,
    /// The mahak dialect's names and keys (when it is spoken).
    mahak: Option<schema::MahakSchema>,
    /// The `(DatabaseId, VisitorId)` a mahak login answers (the admin may
    /// change them, as a reinstalled desktop would).
    session: Mutex<(i64, i64)>,
    /// The visitor each saved record was booked under (mahak): the
    /// visitor of the user whose token saved it.
    booked: Mutex<HashMap<(String, i64), i64>>,
    db: Mutex<Connection>,
    faults: Faults,
    limiter: auth::RateLimiter,
    log: Mutex<VecDeque<RequestLog>>,
    seq: AtomicU64,
    /// Bytes of HTTP answers written to sockets (heads included).
    wire_bytes: AtomicU64,
    run_id: String,
}

impl std::fmt::Debug for RefServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefServer")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl RefServer {
    /// Opens the storage named by `config.data` (memory when `None`) and
    /// builds the server.
    pub fn open(config: ServerConfig) -> Result<Arc<RefServer>, ServerError> {
        let conn = store::open(config.data.as_deref())?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let faults = Faults::new(config.faults.clone(), config.seed);
        let (catalogue, mahak) = match config.dialect {
            Dialect::Documented => (Catalogue::documented(), None),
            Dialect::Mahak => {
                let schema = schema::MahakSchema::load().map_err(ServerError::Invalid)?;
                // Real row versions exceed 2^32: a new store starts there.
                if store::counter(&conn)? == 0 {
                    store::set_counter(&conn, mahak::FIRST_ROW_VERSION)?;
                }
                (Catalogue::empty(), Some(schema))
            }
        };
        Ok(Arc::new(RefServer {
            run_id: format!("{started:x}"),
            faults,
            session: Mutex::new((config.database_id, config.visitor_id)),
            booked: Mutex::new(HashMap::new()),
            mahak,
            catalogue,
            db: Mutex::new(conn),
            limiter: auth::RateLimiter::default(),
            log: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
            wire_bytes: AtomicU64::new(0),
            config: RwLock::new(config),
        }))
    }

    /// The fault injector.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The admin interface: another client's hand on the data.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(self)
    }

    /// The `(DatabaseId, VisitorId)` a mahak login answers.
    pub(crate) fn session_ids(&self) -> (i64, i64) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The visitor a login of `user` answers (mahak): its own, if the
    /// configuration names one, else the server's.
    pub(crate) fn visitor_of(&self, user: &str) -> i64 {
        self.config()
            .user_visitors
            .iter()
            .find(|(n, _)| n == user)
            .map_or_else(|| self.session_ids().1, |(_, v)| *v)
    }

    /// Books record `id` of `collection` under `visitor`.
    pub(crate) fn book(&self, collection: &str, id: i64, visitor: i64) {
        self.booked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((collection.to_string(), id), visitor);
    }

    /// The visitor record `id` of `collection` was last saved under
    /// (mahak), if a client saved it.
    pub(crate) fn booked_visitor(&self, collection: &str, id: i64) -> Option<i64> {
        self.booked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(collection.to_string(), id))
            .copied()
    }

    /// The engine's catalogue of the documented dialect, when the server
    /// speaks it; empty in the mahak dialect, whose collections the server
    /// derives itself from the Swagger (see [`RefServer::collections`]).
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The collections the server serves, parents first: the 57 of the
    /// Swagger's `CommitDataModel` (mahak) or the documented dialect's.
    pub fn collections(&self) -> Vec<String> {
        match &self.mahak {
            Some(schema) => schema.collections.iter().map(|c| c.name.clone()).collect(),
            None => self.catalogue.iter().map(|d| d.name.clone()).collect(),
        }
    }

    /// The dialect the server speaks.
    pub fn dialect(&self) -> Dialect {
        if self.mahak.is_some() {
            Dialect::Mahak
        } else {
            Dialect::Documented
        }
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> ServerConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the configuration at run time (flags, limits, users, token
    /// lifetime). `data` and `seed` only matter when opening.
    pub fn update_config(&self, change: impl FnOnce(&mut ServerConfig)) {
        let mut c = self.config.write().unwrap_or_else(|e| e.into_inner());
        change(&mut c);
    }

    /// The last requests handled (oldest first), at most
    /// `config.log_capacity`.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Bytes of HTTP answers written to sockets so far (heads included,
    /// after compression): what a client downloaded.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn count_wire_bytes(&self, n: u64) {
        self.wire_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// True when the server speaks the mahak dialect.
    pub(crate) fn is_mahak(&self) -> bool {
        self.mahak.is_some()
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn next_tracking_id(&self) -> String {
        format!("rs-{}-{:06}", self.run_id, self.next_seq())
    }

    pub(crate) fn record(&self, entry: RequestLog) {
        let (capacity, verbose) = {
            let c = self.config.read().unwrap_or_else(|e| e.into_inner());
            (c.log_capacity, c.verbose)
        };
        if verbose {
            let counts: Vec<String> = entry
                .counts
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect();
            eprintln!(
                "[refserver] {} {} {} [{}] -> {} {}{} ({} ms)",
                entry.tracking_id,
                entry.method,
                entry.endpoint,
                counts.join(","),
                entry
                    .status
                    .map_or_else(|| "-".to_string(), |s| s.to_string()),
                entry.outcome,
                entry
                    .fault
                    .as_ref()
                    .map_or_else(String::new, |f| format!(" [fault: {f}]")),
                entry.elapsed.as_millis()
            );
        }
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.push_back(entry);
        while log.len() > capacity {
            log.pop_front();
        }
    }
}

/// A [`Transport`] that hands requests straight to a [`RefServer`], with no
/// HTTP and no sockets. A dropped or cut response becomes an `Io` transport
/// error, a stalled one a `Timeout`.
#[derive(Debug, Clone)]
pub struct InProcessTransport(pub Arc<RefServer>);

impl InProcessTransport {
    /// A transport to `server`.
    pub fn new(server: Arc<RefServer>) -> Self {
        InProcessTransport(server)
    }
}

impl Transport for InProcessTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        match self.0.handle(request) {
            Outcome::Respond(r) => Ok(r),
            Outcome::DropConnection => Err(TransportError::new(
                TransportErrorKind::Io,
                "connection closed before the response",
            )),
            Outcome::CutResponse(_) => Err(TransportError::new(
                TransportErrorKind::Io,
                "connection closed in the middle of the response",
            )),
            Outcome::StallResponse(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                "the response stalled in the middle of its body",
            )),
        }
    }
}
