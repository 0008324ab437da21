//! rowsync: an offline-first sync engine for the Mahak Sync API.
//!
//! The engine keeps a local SQLite replica of a Mahak database's records, lets
//! the app read and write them with no network, keeps every local change in an
//! outbox until the server confirms it, and syncs with the server: pull by
//! per-collection `rowVersion` checkpoints, push in bounded batches with
//! server ids mapped back. It speaks the real server's dialect (`mahak`, the
//! default: `docs/WIRE.md`) and the documented one (`docs/PROTOCOL.md`).
//! `docs/DESIGN.md` has the invariants.
//!
//! ```no_run
//! use rowsync::{Credentials, Engine, Settings};
//! use serde_json::json;
//!
//! let engine = Engine::open("shop.db")?;
//! engine.configure(Settings { base_url: "https://mahak.example/API/v3".into(), ..Settings::default() })?;
//! engine.set_credentials(Credentials {
//!     username: "user1".into(), password: "secret".into(), database_id: 1001, package_number: 2002,
//! })?;
//! engine.sync()?; // pulls products, productDetails, people, ... and logs in
//! let visitor_id = engine.session()?.map(|s| s.visitor_id).unwrap_or_default();
//! // A sale (an order of type 201) and its line, as one group.
//! engine.write(|w| {
//!     let order = w.create("orders", json!({"orderType": 201, "visitorId": visitor_id, "personId": 20}))?;
//!     let cid = order["orderClientId"].as_i64().unwrap_or_default();
//!     w.create("orderDetails", json!({"orderClientId": cid, "productDetailId": 50, "count1": 2, "price": 47500}))?;
//!     Ok(())
//! })?;
//! let report = engine.sync()?;
//! # Ok::<(), rowsync::Error>(())
//! ```

pub mod api;
pub mod catalogue;
mod checkpointer;
pub mod conflict;
pub mod engine;
pub mod error;
pub mod explain;
#[doc(hidden)]
pub mod fuzzing;
pub mod hints;
pub mod http;
pub mod key;
pub mod listeners;
pub mod local;
pub mod log;
pub mod record;
pub mod report;
pub mod schema;
pub mod store;
pub mod sync;
pub mod tasks;
pub mod transport;

pub use api::client::{
    ApiClient, CallKind, CallRecord, ClientConfig, ConnectionState, ConnectionWatch, Credentials,
    Outgoing, Reply, RetryPolicy, Session, Shutdown,
};
pub use api::dialect::mahak::PasswordHash;
pub use api::dialect::{Endpoints, SaveOutcome};
pub use api::shutdown::{Clock, VirtualClock};
pub use catalogue::{Catalogue, CollectionDef, ConflictPolicy, Dialect, ParentLink};
pub use conflict::{ConflictInput, ConflictResolver};
pub use engine::{Engine, Settings, Status};
pub use error::{Error, RecordError, Result};
pub use explain::Explanation;
pub use hints::HintOutcome;
pub use http::{HttpConfig, UreqTransport};
pub use key::DbKey;
pub use listeners::{ChangeListener, StatusListener, Subscription};
pub use local::{ChangeEvent, ChangeOrigin, ListOptions, Page, RecordId, RecordRef, Writer};
pub use log::{LogLevel, LogSink};
pub use report::{CollectionReport, SyncReport};
pub use store::{ConflictEntry, Counts, DeadChange, DeadLetter, Op, SyncLogEntry};
pub use tasks::{OrderDisputeItem, RecordDisputeItem, TaskInfo, TaskKind, TaskState, UploadSource};
pub use transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};
