//! The dialects of the Mahak Sync API behind one trait, [`Codec`], and the
//! dialect-neutral values the sync flows work on: the items to save
//! ([`Change`]), the pulled collections ([`PulledCollection`]), the next ask
//! of a paged pull ([`Pager`], [`NextAsk`]), per-record save outcomes
//! ([`SaveOutcome`]), the scope of a refusal ([`RefusalScope`]), the login
//! answer ([`LoginAnswer`], [`Session`]) and task requests
//! ([`TaskRequest`]). Every byte, key, paging rule, refusal rule and local
//! normalisation (key case, dates) of a dialect lives in its codec: `mahak.rs`
//! for the real server of `docs/WIRE.md`, `documented.rs` for
//! `docs/PROTOCOL.md`. Nothing outside this folder names a dialect except to
//! choose one.
//!
//! # Adding a dialect
//!
//! 1. Write its codec: one file or folder here with a type that implements
//!    [`Codec`] (the shared helpers are `login.rs`, `tasks.rs` and, in
//!    `codec.rs`, `check_pulled` and `by_collection`).
//! 2. Give [`Dialect`] an arm and map it to the codec in [`Dialect::codec`].
//! 3. Give the arm its catalogue in `catalogue/` (`Dialect::catalogue`).
//!
//! Nothing else changes: the flows call the trait. `tiny.rs`, a dialect of
//! the tests' own, is such a file; `sync/tests.rs` runs a whole sync in it.
//!
//! The pull parse is a hot path: a codec is called once per page (and once
//! per save, per login, per task), and its loops over records stay inside
//! it, statically dispatched.

pub use crate::catalogue::Dialect;

mod codec;
pub(crate) mod documented;
pub(crate) mod login;
pub(crate) mod mahak;
mod tasks;
#[cfg(test)]
pub(crate) mod tiny;

pub(crate) use codec::{parse_pull_sorted, parse_save_text};
pub use codec::{
    Change, Codec, Endpoints, NextAsk, Pager, PictureSource, PullAsk, PulledCollection,
    RefusalScope, SaveOutcome, SaveRules, Session, UploadAnswer,
};

impl Dialect {
    /// This dialect's codec.
    pub fn codec(self) -> &'static dyn Codec {
        match self {
            Dialect::Mahak => &mahak::Mahak,
            Dialect::Documented => &documented::Documented,
        }
    }

    /// The endpoints this dialect calls by default.
    pub fn endpoints(self) -> Endpoints {
        self.codec().endpoints()
    }
}
