//! The two dialects of the Mahak Sync API, and the dialect-neutral values the
//! sync flows work on. Every byte of a login, pull or save request, and every
//! key of their answers, is read or written here (`mahak.rs` for the real
//! server of `docs/WIRE.md`, `documented.rs` for `docs/PROTOCOL.md`); pull,
//! push and reconciliation only see a [`PulledCollection`] per collection and
//! a [`SaveOutcome`] per record sent.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{Error, Result};
use crate::record::Meta;
use crate::sync::push::Change;

pub use crate::catalogue::Dialect;

pub(crate) mod documented;
pub(crate) mod mahak;
pub(crate) mod tasks;

/// One collection's part of a pull answer, validated.
pub struct PulledCollection<'a> {
    /// The collection.
    pub def: &'a CollectionDef,
    /// Each record's JSON text, in the engine's naming (camelCase keys), with
    /// its bookkeeping fields.
    pub records: Vec<(Cow<'a, str>, Meta)>,
    /// The checkpoint the answer names for the collection (documented
    /// dialect); the mahak dialect names none.
    pub row_version: Option<i64>,
    /// The server says more records remain (documented dialect only).
    pub has_more: bool,
}

impl PulledCollection<'_> {
    /// The checkpoint this entry allows: the largest rowVersion it carries.
    pub fn checkpoint(&self) -> Option<i64> {
        let rec = self.records.iter().filter_map(|(_, m)| m.row_version).max();
        match (self.row_version, rec) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when a record came without a rowVersion (mahak: taken at
    /// version 0), which no request can page past.
    pub fn has_versionless(&self) -> bool {
        self.records.iter().any(|(_, m)| m.versionless)
    }

    /// True when a record above `checkpoint` came (a page that moved on).
    pub fn brings_news(&self, checkpoint: i64) -> bool {
        self.records
            .iter()
            .any(|(_, m)| m.row_version.is_some_and(|rv| rv > checkpoint))
    }
}

/// What the server said of one record of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Saved: its server id (when the answer gave one) and new row version.
    Saved {
        /// The server id.
        server_id: Option<i64>,
        /// The row version the save gave it.
        row_version: Option<i64>,
    },
    /// Refused, with the server's words.
    Refused {
        /// The field the server blamed (`Property`), if any.
        property: Option<String>,
        /// The server's code, if any.
        code: Option<i64>,
        /// The server's text.
        message: String,
    },
    /// A create the server says it already has (the real server does not
    /// deduplicate a resent create): to be reconciled by a pull, never
    /// resent blindly.
    AlreadyThere {
        /// The server's text.
        message: String,
    },
    /// The answer says nothing of this record.
    Unknown,
}

/// The answer to a save: one outcome per change of the batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveAnswer {
    /// Outcomes, aligned with the batch's changes.
    pub outcomes: Vec<SaveOutcome>,
}

/// What a dialect needs from the settings to read a save answer.
#[derive(Debug, Clone, Default)]
pub struct SaveRules {
    /// Text patterns (case-insensitive) of a per-record error that means
    /// "this create is already registered".
    pub already_registered: Vec<String>,
}

/// The endpoint names of a dialect. The real server also answers the `V2`
/// names, but the vendor's own apps call the plain ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// Login.
    pub login: String,
    /// Pull.
    pub pull: String,
    /// Save.
    pub save: String,
    /// Settling orders in dispute (`SolveOrderDispute`).
    pub order_dispute: String,
    /// Reporting the records held, or settling them (`SolveDispute`).
    pub dispute: String,
    /// Uploading a record's file (`Upload`).
    pub upload: String,
}

impl Endpoints {
    /// Every name, for checking them.
    pub fn all(&self) -> [&str; 6] {
        [
            &self.login,
            &self.pull,
            &self.save,
            &self.order_dispute,
            &self.dispute,
            &self.upload,
        ]
    }
}

impl Dialect {
    /// The endpoints this dialect calls by default.
    pub fn endpoints(self) -> Endpoints {
        let (login, pull, save) = match self {
            Dialect::Mahak => ("Login", "GetAllData", "SaveAllData"),
            Dialect::Documented => ("LoginV2", "GetAllDataV2", "SaveAllDataV2"),
        };
        Endpoints {
            login: login.into(),
            pull: pull.into(),
            save: save.into(),
            // Both dialects name these alike.
            order_dispute: "SolveOrderDispute".into(),
            dispute: "SolveDispute".into(),
            upload: "Upload".into(),
        }
    }

    /// True when the server deduplicates a resent create (the documented
    /// dialect's idempotency), so a save whose answer was lost may be sent
    /// again blindly. The real server does not.
    pub fn idempotent_save(self) -> bool {
        matches!(self, Dialect::Documented)
    }

    /// The pull request for `wanted` collections, each from its checkpoint;
    /// mahak: only orders of `order_types` when it is not empty.
    pub fn pull_body(
        self,
        wanted: &[(&CollectionDef, i64)],
        page_size: u32,
        order_types: &[i64],
    ) -> Result<Vec<u8>> {
        let mut body = serde_json::Map::new();
        for (def, checkpoint) in wanted {
            // `from<Entity>Version` (mahak) or `<collection>RowVersion`.
            let key = match self {
                Dialect::Mahak => def.pull_key(),
                Dialect::Documented => def.checkpoint_field(),
            };
            body.insert(key, serde_json::Value::from(*checkpoint));
        }
        if page_size > 0 {
            body.insert("pageSize".into(), serde_json::Value::from(page_size));
        }
        if self == Dialect::Mahak
            && !order_types.is_empty()
            && wanted.iter().any(|(def, _)| def.name == "orders")
        {
            body.insert("orderTypes".into(), serde_json::Value::from(order_types));
        }
        Ok(serde_json::to_vec(&body)?)
    }

    /// A pull answer's `data` as this dialect's parser reads it: the mahak
    /// dialect gives every key its camelCase name, in place (the answer is
    /// PascalCase; only ASCII letters change, so nothing moves and nothing
    /// is copied record by record).
    pub fn page_text(self, text: String) -> String {
        match self {
            Dialect::Mahak => mahak::camel_page(text),
            Dialect::Documented => text,
        }
    }

    /// Parses and validates a pull answer's `data` (as [`Dialect::page_text`]
    /// gives it). Collections not asked for are ignored; every record of the
    /// asked ones must be an object with an integer server id and a
    /// non-negative rowVersion. Parents come before children in the result,
    /// whatever order the server used.
    pub fn parse_pull<'a>(
        self,
        catalogue: &'a Catalogue,
        wanted: &'a [String],
        data: &'a str,
        tracking_id: Option<&str>,
    ) -> Result<Vec<PulledCollection<'a>>> {
        let mut out = match self {
            Dialect::Mahak => mahak::parse_pull(catalogue, wanted, data, tracking_id)?,
            Dialect::Documented => documented::parse_pull(catalogue, wanted, data, tracking_id)?,
        };
        out.sort_by_key(|c| catalogue.position(&c.def.name));
        Ok(out)
    }

    /// The save request for `changes`, collections in catalogue order.
    pub fn save_body(self, catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>> {
        match self {
            Dialect::Mahak => mahak::save_body(catalogue, changes),
            Dialect::Documented => documented::save_body(catalogue, changes),
        }
    }

    /// Reads a save answer's `data` into one outcome per change. The whole
    /// answer is validated before anything is applied.
    pub fn parse_save(
        self,
        catalogue: &Catalogue,
        changes: &[&Change],
        data: &str,
        rules: &SaveRules,
        tracking_id: Option<&str>,
    ) -> Result<SaveAnswer> {
        let data: &RawValue = serde_json::from_str(data).map_err(|e| {
            protocol(
                None,
                format!("the save answer's data is not JSON: {e}"),
                tracking_id,
            )
        })?;
        match self {
            Dialect::Mahak => mahak::parse_save(catalogue, changes, data, rules, tracking_id),
            Dialect::Documented => documented::parse_save(catalogue, changes, data, tracking_id),
        }
    }
}

/// A protocol error about `collection`.
pub(crate) fn protocol(
    collection: Option<&str>,
    message: String,
    tracking_id: Option<&str>,
) -> Error {
    Error::Protocol {
        collection: collection.map(str::to_string),
        message,
        tracking_id: tracking_id.map(str::to_string),
    }
}

/// Checks a pulled record: a server id, a rowVersion that is not negative,
/// and a nesting the engine can read back (invariants 7 and 14: refused
/// before anything is applied).
pub(crate) fn check_pulled(
    def: &CollectionDef,
    index: usize,
    meta: &Meta,
    tracking_id: Option<&str>,
) -> Result<()> {
    let fail = |m: String| {
        Err(protocol(
            Some(&def.name),
            format!("record {index}: {m}"),
            tracking_id,
        ))
    };
    if meta.server_id.is_none() {
        return fail(format!("no `{}`", def.id_field));
    }
    let depth = meta.depth;
    if depth > crate::record::MAX_DEPTH {
        return fail(format!(
            "nested {depth} levels deep, more than the {} the engine can read back",
            crate::record::MAX_DEPTH
        ));
    }
    match meta.row_version {
        None => fail("no `rowVersion`".into()),
        Some(rv) if rv < 0 => fail(format!("negative `rowVersion` {rv}")),
        Some(_) => Ok(()),
    }
}
