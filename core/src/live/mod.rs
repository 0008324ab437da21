//! Live queries: the app watches a query (a collection, equality filters,
//! an order, a limit) and is told its records at once, then again whenever
//! a local write or a sync changes them. `query.rs` checks a query and runs
//! it; `hub.rs` holds the watches and the thread that runs them, off the
//! writer's thread, once per burst of changes, and only for the
//! collections a change named.

mod hub;
mod query;

pub(crate) use hub::Live;
pub use hub::{LiveQuery, QueryListener};
pub use query::{Order, Query, DEFAULT_LIMIT, MAX_LIMIT};
