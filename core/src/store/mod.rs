//! The replica's database, and every piece of SQL the engine runs: one file
//! per table family (`records.rs` with the pull checkpoints, `outbox.rs`,
//! `dead_letters.rs`, `handover.rs` (who made each
//! change, the hand-over of a shared device), `logs.rs`, `tasks.rs`, `pictures.rs`
//! (the picture cache's index), `meta.rs` with every stored
//! key), the thread that checkpoints the write-ahead log
//! (`checkpointer.rs`), and [`Db`], the handle the flows hold.
//!
//! [`Db::write`] and [`Db::read`] are the only ways to a transaction: a
//! write runs its closure in one transaction of the one writer connection
//! and commits it (an error rolls it back); a read runs on the reader
//! connection beside it. Functions that write take a [`Tx`], functions
//! that read take a `&Connection`; which writes go together is the flows'
//! to decide (`local.rs`, `sync/`).

pub(crate) mod checkpointer;
mod db;
pub(crate) mod dead_letters;
pub(crate) mod handover;
pub(crate) mod logs;
pub(crate) mod meta;
pub(crate) mod outbox;
pub(crate) mod pictures;
pub(crate) mod records;
pub(crate) mod tasks;

pub use db::{coll_id_of, counts, holds_data, Counts, Store, Tx};
pub(crate) use db::{now, Db};
pub use dead_letters::{dead_letters, parked_in, DeadChange, DeadLetter};
pub use handover::{DiscardedChange, PendingChange, UserPending};
pub use logs::{conflicts, sync_log, ConflictEntry, SyncLogEntry};
pub use meta::metrics;
pub use outbox::{in_doubt, is_parked, pending_in_order, pending_of, Pending};
pub use records::{
    checkpoint, checkpoints, count_rows, list_rows, probe_by_client_id, probe_by_server_id,
    query_rows, row_by_client_id, row_by_local_id, row_by_server_id, Match, NewRow, Row,
};
