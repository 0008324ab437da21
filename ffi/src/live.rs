//! Live queries for Kotlin and Swift: the query as a record (its filters
//! as a JSON object's text, like every record in the bindings), the
//! listener the app implements (a foreign trait), and the handle that keeps
//! a watch alive. The core runs the queries on its own `rowsync-live`
//! thread; this module converts, and fences the app's listener with
//! `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Result, RowsyncError};

/// A query: the live records of `collection` whose fields equal every
/// filter, ordered by `order_by` (if any; else oldest first), at most
/// `limit`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordQuery {
    /// The collection.
    pub collection: String,
    /// A JSON object of fields and the value each must equal, e.g.
    /// `{"orderType": 201}` (strings, numbers, booleans, null).
    #[uniffi(default = "{}")]
    pub filters_json: String,
    /// The field to order by; none: oldest first.
    #[uniffi(default = None)]
    pub order_by: Option<String>,
    /// Largest first.
    #[uniffi(default = false)]
    pub descending: bool,
    /// At most this many records (1 to 10,000).
    #[uniffi(default = 1000)]
    pub limit: u32,
}

impl RecordQuery {
    /// The core's query; bad filter JSON is `InvalidInput`.
    pub(crate) fn to_core(&self) -> Result<rowsync::Query> {
        let filters = match serde_json::from_str::<Value>(&self.filters_json) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(bad_filters(&self.collection, "must be a JSON object")),
            Err(e) => {
                return Err(bad_filters(
                    &self.collection,
                    &format!("not valid JSON: {e}"),
                ))
            }
        };
        Ok(rowsync::Query {
            collection: self.collection.clone(),
            filters,
            order: self.order_by.as_ref().map(|f| rowsync::Order {
                field: f.clone(),
                descending: self.descending,
            }),
            limit: self.limit,
        })
    }
}

fn bad_filters(collection: &str, reason: &str) -> RowsyncError {
    RowsyncError::InvalidInput {
        collection: collection.to_string(),
        field: "filters_json".to_string(),
        reason: reason.to_string(),
    }
}

/// Told the records of a watched query, at once and after each change of
/// them. Called on the engine's own live-query thread, one call at a time:
/// return quickly (the other queries wait), and hop to the UI thread
/// yourself.
#[uniffi::export(foreign)]
pub trait QueryListener: Send + Sync {
    /// The query's records, each a JSON object.
    fn on_result(&self, records: Vec<String>);
    /// A run failed (the replica could not be read); the watch goes on.
    fn on_error(&self, error: RowsyncError);
}

pub(crate) struct QueryAdapter(pub(crate) Arc<dyn QueryListener>);

impl rowsync::QueryListener for QueryAdapter {
    fn on_result(&self, records: &[Value]) {
        let records = records.iter().map(Value::to_string).collect();
        // A throwing listener is the app's bug; the other watches go on.
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.on_result(records)));
    }

    fn on_error(&self, error: &rowsync::Error) {
        let error = RowsyncError::Storage {
            detail: error.to_string(),
        };
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.on_error(error)));
    }
}

/// A watched query. Its listener is called until `cancel()` is called or
/// the handle is destroyed (Kotlin: `close()`/`use {}`; Swift: released);
/// after either, it is never called again.
#[derive(uniffi::Object)]
pub struct LiveQueryHandle {
    inner: rowsync::LiveQuery,
}

impl LiveQueryHandle {
    pub(crate) fn new(inner: rowsync::LiveQuery) -> Arc<Self> {
        Arc::new(LiveQueryHandle { inner })
    }
}

#[uniffi::export]
impl LiveQueryHandle {
    /// Stops the watch now (waiting for a call in progress on another
    /// thread). Calling it again does nothing.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// True until `cancel()` was called.
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// How many times the query ran, the first run included (a run whose
    /// result did not change calls no listener).
    pub fn runs(&self) -> u64 {
        self.inner.runs()
    }
}
