//! rowsync: an offline-first sync engine for the Mahak Sync API.
//!
//! The engine keeps a local SQLite replica of a Mahak database's records, lets
//! the app read and write them with no network, keeps every local change in an
//! outbox until the server confirms it, and syncs with the server: pull by
//! per-collection `rowVersion` checkpoints, push in bounded batches with
//! server ids mapped back. It speaks the real server's dialect (`mahak`, the
//! default: `docs/WIRE.md`) and the documented one (`docs/PROTOCOL.md`).
//! `docs/DESIGN.md` has the invariants; `ARCHITECTURE.md` at the repository
//! root says where each step of each flow lives.
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

//! # Layers
//!
//! Every module is private; this file re-exports what an app (and `ffi/`,
//! the examples and the tests) may use. A module imports only modules on
//! lower layers, and the files of one folder import each other without a
//! loop: `core/tests/layers.rs` reads every `crate::` and `super::` path of
//! the sources (tests aside) against the table below and fails on one that
//! runs the other way. A new module gets its row here first.
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | 9 | `fuzzing` | entry points for the fuzz targets (hidden) |
//! | 8 | `engine` | the facade an app holds: open, configure, local API, reads, start a sync |
//! | 7 | `sync` | one sync: the driver (`session.rs`) and its steps |
//! | 6 | `settings`, `local`, `explain`, `live` | the settings; the local write flow; why a record is not synced; live queries |
//! | 5 | `store`, `api` | the database (every table, every meta key, [`Db`](store::Db)); the server (the client, the codecs of the dialects) |
//! | 4 | `conflict`, `report`, `listeners`, `tasks` | merge rules; the sync report; change events and listeners; the task queue's vocabulary |
//! | 3 | `record` | a record's bookkeeping fields, its ids, the kind of a pending change |
//! | 2 | `catalogue`, `http` | the collections and the dialect's name; the default HTTP transport |
//! | 1 | `log`, `transport`, `key`, `hints`, `schema`, `status`, `calls`, `url`, `locks`, `files` | leaves (`files`: the picture cache's files on disk) |
//! | 0 | `error` | the error types |

mod api;
mod calls;
mod catalogue;
mod conflict;
mod engine;
mod error;
mod explain;
mod files;
mod fuzzing;
mod hints;
mod http;
mod key;
mod listeners;
mod live;
mod local;
mod locks;
mod log;
mod record;
mod report;
mod schema;
mod settings;
mod status;
mod store;
mod sync;
mod tasks;
mod transport;
mod url;

pub use api::client::{
    ApiClient, CallKind, ClientConfig, ConnectionWatch, Credentials, Outgoing, PasswordHash,
    Progress, Reply, RetryPolicy, Session, Shutdown,
};
pub use api::dialect::{Endpoints, SaveOutcome};
pub use api::shutdown::{Clock, VirtualClock};
pub use calls::{CallRecord, RetryCause};
pub use catalogue::{Catalogue, CollectionDef, ConflictPolicy, Dialect, ParentLink};
pub use conflict::{ConflictInput, ConflictResolver};
pub use engine::{Engine, Status};
pub use error::{Error, RecordError, Result};
pub use explain::Explanation;
pub use hints::{sign as sign_hint, HintOutcome};
pub use http::{HttpConfig, UreqTransport};
pub use key::DbKey;
pub use listeners::{
    ChangeEvent, ChangeListener, ChangeOrigin, RecordRef, StatusListener, Subscription,
};
pub use live::{
    LiveQuery, Order, Query, QueryListener, DEFAULT_LIMIT as QUERY_DEFAULT_LIMIT,
    MAX_LIMIT as QUERY_MAX_LIMIT,
};
pub use local::{ListOptions, Page, Writer};
pub use log::{LogLevel, LogSink};
pub use record::{Op, RecordId};
pub use report::{
    CollectionReport, Metrics, Phases, PictureReport, Retries, SyncMetrics, SyncReport,
};
pub use settings::{Settings, DEFAULT_PICTURE_CACHE_BYTES};
pub use status::{clock_skew_warns, ConnectionState, DEFAULT_CLOCK_SKEW_WARNING_SECONDS};
pub use store::{
    ConflictEntry, Counts, DeadChange, DeadLetter, DiscardedChange, PendingChange, SyncLogEntry,
    UserPending,
};
pub use tasks::{OrderDisputeItem, RecordDisputeItem, TaskInfo, TaskKind, TaskState, UploadSource};
pub use transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};

/// Entry points for the fuzz targets (`fuzz/`) and the corpus replay test:
/// not part of the API.
#[doc(hidden)]
pub use fuzzing::{
    login_answer as fuzz_login_answer, pull_answer as fuzz_pull_answer,
    save_answer as fuzz_save_answer,
};
