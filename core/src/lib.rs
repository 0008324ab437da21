//! rowsync: an offline-first sync engine for the Mahak Sync API.
//!
//! The engine keeps a local SQLite replica of a Mahak database's records, lets
//! the app read and write them with no network, keeps every local change in an
//! outbox until the server confirms it, and syncs over `GetAllDataV2` (pull by
//! per-collection `rowVersion` checkpoints) and `SaveAllDataV2` (push in
//! bounded batches, server ids mapped back). See `PROTOCOL.md` for the wire
//! contract and `DESIGN.md` for the invariants.
//!
//! ```no_run
//! use rowsync::{Engine, RecordId, Settings, Credentials};
//! use serde_json::json;
//!
//! let engine = Engine::open("shop.db")?;
//! let order = engine.write(|w| {
//!     let order = w.create("orders", json!({"customerId": 20, "totalAmount": 95000}))?;
//!     let cid = order["orderClientId"].as_i64().unwrap_or_default();
//!     w.create("orderDetails", json!({"orderClientId": cid, "productId": 50, "quantity": 2}))?;
//!     Ok(order)
//! })?;
//! engine.configure(Settings { base_url: "https://mahak.example/API/v3".into(), ..Settings::default() })?;
//! engine.set_credentials(Credentials {
//!     username: "user1".into(), password: "secret".into(), database_id: 1001, package_number: 2002,
//! })?;
//! let report = engine.sync()?;
//! # Ok::<(), rowsync::Error>(())
//! ```

pub mod api;
pub mod catalogue;
pub mod conflict;
pub mod engine;
pub mod error;
pub mod http;
pub mod listeners;
pub mod local;
pub mod log;
pub mod record;
pub mod report;
pub mod schema;
pub mod store;
pub mod sync;
pub mod transport;

pub use api::client::{
    ApiClient, CallRecord, ClientConfig, ConnectionState, Credentials, Reply, RetryPolicy, Shutdown,
};
pub use catalogue::{Catalogue, CollectionDef, ConflictPolicy, Dialect, ParentLink};
pub use conflict::{ConflictInput, ConflictResolver};
pub use engine::{Engine, Settings, Status};
pub use error::{Error, RecordError, Result};
pub use http::{HttpConfig, UreqTransport};
pub use listeners::{ChangeListener, StatusListener, Subscription};
pub use local::{ChangeEvent, ChangeOrigin, ListOptions, Page, RecordId, RecordRef, Writer};
pub use log::{LogLevel, LogSink};
pub use report::{CollectionReport, SyncReport};
pub use store::{ConflictEntry, Counts, DeadChange, DeadLetter, Op, SyncLogEntry};
pub use transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};
