//! Helpers shared by the end-to-end tests: a reference server on a loopback
//! port (or called in-process), a fresh replica in a unique temporary file,
//! and an engine configured to sync against the server with short retry
//! delays so failure tests stay fast. `server_config`, `settings` and
//! `engine` speak the documented dialect (the suites written for it);
//! the `mahak_*` ones speak the real server's, and `engine_in_process`
//! speaks whatever its server does.

pub mod proxy;
pub mod sim;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rowsync::{
    Credentials, Dialect, Engine, HttpRequest, HttpResponse, Settings, Transport, TransportError,
};
use rowsync_refserver::{InProcessTransport, RefServer, RunningServer, ServerConfig};
use serde_json::Value;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A unique path for a test database; removed (with WAL files) when dropped.
pub struct TempDb(pub PathBuf);

impl TempDb {
    /// A new unique path under the system temp dir.
    pub fn new(tag: &str) -> TempDb {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rowsync-e2e-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        TempDb(dir.join(format!("{tag}-{n}.db")))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        let mut pictures = self.0.clone().into_os_string();
        pictures.push(".pictures");
        let _ = std::fs::remove_dir_all(pictures);
    }
}

/// The test server in the documented dialect (admin on, quiet).
pub fn server_config() -> ServerConfig {
    ServerConfig {
        admin: true,
        dialect: rowsync_refserver::Dialect::Documented,
        ..ServerConfig::default()
    }
}

/// The test server in the real server's dialect, with its default habits
/// (admin on, quiet).
pub fn mahak_server_config() -> ServerConfig {
    ServerConfig {
        admin: true,
        dialect: rowsync_refserver::Dialect::Mahak,
        ..ServerConfig::default()
    }
}

/// The engine's dialect for a server configuration.
pub fn dialect_of(config: &ServerConfig) -> Dialect {
    match config.dialect {
        rowsync_refserver::Dialect::Mahak => Dialect::Mahak,
        rowsync_refserver::Dialect::Documented => Dialect::Documented,
    }
}

/// Starts the reference server on a loopback port.
pub fn start(config: ServerConfig) -> RunningServer {
    RunningServer::start(config).expect("reference server starts")
}

/// Settings for `url` with short retries, in the documented dialect.
pub fn settings(url: &str) -> Settings {
    settings_for(url, Dialect::Documented)
}

/// Settings for `url` with short retries, in the mahak dialect.
pub fn mahak_settings(url: &str) -> Settings {
    settings_for(url, Dialect::Mahak)
}

/// Settings for `url` in `dialect` with short retries.
pub fn settings_for(url: &str, dialect: Dialect) -> Settings {
    Settings {
        dialect,
        base_url: url.to_string(),
        max_attempts: 4,
        base_delay_ms: 1,
        max_delay_ms: 5,
        connect_timeout_ms: 2_000,
        timeout_ms: 10_000,
        ..Settings::default()
    }
}

/// The reference server's default credentials.
pub fn credentials() -> Credentials {
    ServerConfig::default().credentials()
}

/// An engine on `db`, configured for `url` (documented dialect),
/// credentials set.
pub fn engine(db: &TempDb, url: &str) -> Engine {
    engine_for(db, url, Dialect::Documented)
}

/// An engine on `db`, configured for `url` in the mahak dialect.
pub fn mahak_engine(db: &TempDb, url: &str) -> Engine {
    engine_for(db, url, Dialect::Mahak)
}

/// An engine on `db`, configured for `url` in `dialect`, credentials set.
pub fn engine_for(db: &TempDb, url: &str, dialect: Dialect) -> Engine {
    let e = Engine::open(&db.0).expect("engine opens");
    e.configure(settings_for(url, dialect)).expect("configure");
    e.set_credentials(credentials()).expect("credentials");
    e
}

/// An engine that talks to `server` in-process (no HTTP), in its dialect.
pub fn engine_in_process(db: &TempDb, server: &Arc<RefServer>) -> Engine {
    let e = engine_for(db, "http://127.0.0.1/API/v3", dialect_of(&server.config()));
    e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
        .expect("transport");
    e
}

/// A number from the environment variable `name` (the long runs' counts
/// and the seeds to replay).
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Every live local record of `collection`.
pub fn local_all(e: &Engine, collection: &str) -> Vec<Value> {
    e.list(
        collection,
        &rowsync::ListOptions {
            limit: u64::MAX >> 1,
            ..Default::default()
        },
    )
    .expect("list")
    .records
}

/// The client id of a record the engine returned.
pub fn client_id(record: &Value, key: &str) -> i64 {
    record[format!("{key}ClientId")]
        .as_i64()
        .expect("client id")
}

/// A shop's sale (mahak), left pending: an order of type 201 of the
/// session's visitor for the first pulled customer, with one line on the
/// first pulled product detail.
pub fn write_sale(e: &Engine) {
    let person = local_all(e, "people")[0]["personId"].as_i64().unwrap();
    let detail = local_all(e, "productDetails")[0]["productDetailId"]
        .as_i64()
        .unwrap();
    let visitor = e.session().unwrap().map_or(0, |s| s.visitor_id);
    e.write(|w| {
        let order = w.create(
            "orders",
            serde_json::json!({"orderType": 201, "visitorId": visitor, "personId": person}),
        )?;
        w.create(
            "orderDetails",
            serde_json::json!({"orderClientId": client_id(&order, "order"), "productDetailId": detail, "count1": 1, "price": 1000}),
        )?;
        Ok(())
    })
    .unwrap();
}

/// A server that answers every pull (either dialect) with a fixed body and
/// the tracking id `bad-1`; the rest goes to the real one.
pub struct BadPages {
    /// The real server, for everything but pulls.
    pub inner: InProcessTransport,
    /// The body every pull gets.
    pub page: String,
}

impl Transport for BadPages {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse, TransportError> {
        if req.url.to_ascii_lowercase().contains("/sync/getalldata") {
            return Ok(HttpResponse {
                status: 200,
                headers: vec![("Trackingid".into(), "bad-1".into())],
                body: self.page.clone().into_bytes(),
                wire_bytes: None,
            });
        }
        self.inner.send(req)
    }
}
