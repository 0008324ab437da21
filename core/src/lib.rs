//! rowsync: an offline-first sync engine for the Mahak Sync API.
//!
//! The engine keeps a local SQLite replica of a Mahak database's records, lets
//! the app read and write them with no network, keeps every local change in an
//! outbox until the server confirms it, and syncs over `GetAllDataV2` (pull by
//! per-collection `rowVersion` checkpoints) and `SaveAllDataV2` (push in
//! bounded batches, server ids mapped back). See `PROTOCOL.md` for the wire
//! contract and `DESIGN.md` for the invariants.

pub mod catalogue;
pub mod client;
pub mod error;
pub mod http;
pub mod retry;
pub mod transport;

pub use catalogue::{Catalogue, CollectionDef, ConflictPolicy, ParentLink};
pub use client::{ApiClient, CallRecord, ClientConfig, Credentials, Reply, RetryPolicy, Shutdown};
pub use error::{Error, RecordError, Result};
pub use http::{HttpConfig, UreqTransport};
pub use transport::{HttpRequest, HttpResponse, Transport, TransportError, TransportErrorKind};
