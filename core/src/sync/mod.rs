//! The sync flows of DESIGN.md: pull (pages into the store), push (the
//! outbox to the server, confirmed per record), and the reconciliation of
//! creates whose save answer never arrived. They work on the dialect-neutral
//! values of `api::dialect` and never read a JSON key of the wire.

pub(crate) mod dead_letters;
pub mod pull;
pub mod push;
pub mod schedule;
pub(crate) mod session;
pub(crate) mod tasks;
