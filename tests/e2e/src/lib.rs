//! Helpers shared by the end-to-end tests: a reference server on a loopback
//! port (or called in-process), a fresh replica in a unique temporary file,
//! and an engine configured to sync against the server with short retry
//! delays so failure tests stay fast.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rowsync::{Credentials, Engine, Settings};
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
    }
}

/// The default test server configuration (admin on, quiet).
pub fn server_config() -> ServerConfig {
    ServerConfig {
        admin: true,
        ..ServerConfig::default()
    }
}

/// Starts the reference server on a loopback port.
pub fn start(config: ServerConfig) -> RunningServer {
    RunningServer::start(config).expect("reference server starts")
}

/// Settings for `url` with short retries.
pub fn settings(url: &str) -> Settings {
    Settings {
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

/// An engine on `db`, configured for `url`, logged-in credentials set.
pub fn engine(db: &TempDb, url: &str) -> Engine {
    let e = Engine::open(&db.0).expect("engine opens");
    e.configure(settings(url)).expect("configure");
    e.set_credentials(credentials()).expect("credentials");
    e
}

/// An engine that talks to `server` in-process (no HTTP).
pub fn engine_in_process(db: &TempDb, server: &Arc<RefServer>) -> Engine {
    let e = engine(db, "http://127.0.0.1/API/v3");
    e.set_transport(Arc::new(InProcessTransport::new(server.clone())))
        .expect("transport");
    e
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
