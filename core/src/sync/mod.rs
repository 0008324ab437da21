//! The sync flows of DESIGN.md, one step per file, run by one driver
//! (`session.rs`) over one sync's `context.rs`: pull (`pull.rs`: pages fetched by `fetch.rs` and applied
//! by `apply.rs`), push (`push.rs`), confirm (`confirm.rs`), resolve
//! (`resolve.rs`), reconcile (`reconcile.rs`), parking (`park.rs`) and the
//! task queue (`tasks.rs`); and the picture cache's step (`pictures.rs`),
//! which the engine runs after a sync. Steps work on the dialect-neutral values of
//! `api::dialect` and never read a JSON key of the wire.

pub(crate) mod apply;
mod confirm;
pub(crate) mod context;
mod fetch;
mod park;
pub(crate) mod pictures;
mod pull;
pub(crate) mod push;
mod reconcile;
mod resolve;
mod schedule;
pub(crate) mod session;
mod tasks;
#[cfg(test)]
mod tests;
