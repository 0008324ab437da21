//! The [`Codec`] trait every dialect implements, the dialect-neutral values
//! it reads and writes, and the helpers codecs share (checking a pulled
//! record, grouping a save by collection, parsing with the catalogue's
//! order). Imports no codec.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::api::call::CallKind;
use crate::api::config::{ClientConfig, Credentials};
use crate::catalogue::{Catalogue, CollectionDef};
use crate::error::{Error, Result};
use crate::record::{Meta, Op};
use crate::tasks::{OrderDisputeItem, RecordDisputeItem};

/// One dialect: the bytes of its requests, the reading of its answers, and
/// the rules that differ between servers. See the module's doc for how to
/// add one.
pub trait Codec: Send + Sync {
    // ----- habits ---------------------------------------------------------

    /// The endpoints it calls by default.
    fn endpoints(&self) -> Endpoints;

    /// True when the server deduplicates a resent create, so a save whose
    /// answer was lost may be sent again blindly.
    fn idempotent_save(&self) -> bool;

    // ----- login ----------------------------------------------------------

    /// The login request, with what `config` says of it (the app id, how
    /// the password is sent). The password may be hashed here; the body is
    /// dropped after its call.
    fn login_body(&self, credentials: &Credentials, config: &ClientConfig) -> Result<Vec<u8>>;

    /// Reads a 2xx login answer (its whole body). `Ok(None)` when it holds
    /// no token; a refusal is `AuthFailed` (or the envelope's error).
    fn read_login(
        &self,
        status: u16,
        body: &[u8],
        tracking_id: Option<String>,
    ) -> Result<Option<LoginAnswer>>;

    /// True when a login refused with `code` stays refused (no call is sent)
    /// until the app gives new credentials.
    fn login_refusal_sticks(&self, code: i64) -> bool;

    // ----- pull -----------------------------------------------------------

    /// The paging rule of one pull: its page size, where each collection is
    /// asked from, and what to ask after each page. `page_size` is the
    /// configured one; `inclusive_bound` says the server was seen sending
    /// the record at the version asked from (remembered across syncs).
    fn pager(&self, page_size: u32, inclusive_bound: bool) -> Box<dyn Pager>;

    /// The pull request for `ask`.
    fn pull_body(&self, ask: &PullAsk<'_>) -> Result<Vec<u8>>;

    /// A pull answer's `data` as [`Codec::parse_pull`] reads it (it may be
    /// rewritten in place, e.g. key case).
    fn page_text(&self, text: String) -> String {
        text
    }

    /// Parses and validates a pull answer's `data` (as
    /// [`Codec::page_text`] gave it). Collections not in `wanted` are
    /// ignored; every record of the wanted ones is checked
    /// ([`check_pulled`]). Any order; the caller sorts.
    fn parse_pull<'a>(
        &self,
        catalogue: &'a Catalogue,
        wanted: &'a [String],
        data: &'a str,
        tracking_id: Option<&str>,
    ) -> Result<Vec<PulledCollection<'a>>>;

    // ----- save -----------------------------------------------------------

    /// The save request for `changes`.
    fn save_body(&self, catalogue: &Catalogue, changes: &[&Change]) -> Result<Vec<u8>>;

    /// Reads a save answer's `data` into one outcome per change, validated
    /// whole before anything is applied.
    fn parse_save(
        &self,
        catalogue: &Catalogue,
        changes: &[&Change],
        data: &RawValue,
        rules: &SaveRules,
        tracking_id: Option<&str>,
    ) -> Result<SaveAnswer>;

    /// What a whole save refused with `code` (and no usable errors list)
    /// calls for.
    fn refusal_scope(&self, code: i64) -> RefusalScope;

    // ----- local writes ---------------------------------------------------

    /// A record the app wrote, in this dialect's naming (key case, dates),
    /// before it is validated and stored.
    fn normalise_local(&self, record: Map<String, Value>) -> Map<String, Value> {
        record
    }

    // ----- tasks ----------------------------------------------------------

    /// Checks one order of a `SolveOrderDispute` before it is queued.
    fn check_order_dispute(&self, item: &OrderDisputeItem) -> Result<()>;

    /// Orders per `SolveOrderDispute` request.
    fn order_disputes_per_request(&self) -> usize;

    /// Records per `SolveDispute` request.
    fn disputes_per_request(&self) -> usize;

    /// True when a dispute whose answer was lost may be sent again (the
    /// server deduplicates it); otherwise it is parked.
    fn resend_dispute_in_doubt(&self) -> bool;

    /// True when the answers to disputes and uploads are known envelopes;
    /// otherwise any empty, non-envelope or short plain 2xx answer is a
    /// success.
    fn task_answers_known(&self) -> bool;

    /// `SolveOrderDispute` for `items`.
    fn order_dispute_request(
        &self,
        database_id: i64,
        request_id: &str,
        items: &[OrderDisputeItem],
    ) -> Result<TaskRequest>;

    /// `SolveDispute` for records of `def`.
    fn dispute_request(
        &self,
        database_id: i64,
        def: &CollectionDef,
        request_id: &str,
        items: &[RecordDisputeItem],
    ) -> Result<TaskRequest>;

    /// `Upload` of `data` for record `server_id` of `def`.
    fn upload_request(
        &self,
        def: &CollectionDef,
        server_id: i64,
        file_name: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<TaskRequest>;

    /// What the answer to an `Upload` the server took says of the record:
    /// `data` is the envelope's data as JSON text (`null`, or empty, when
    /// it has none). By default nothing.
    fn read_upload(&self, _data: &str) -> UploadAnswer {
        UploadAnswer::default()
    }

    // ----- pictures -------------------------------------------------------

    /// The collection whose records are pictures (files the picture cache
    /// fetches), if the dialect has one.
    fn picture_collection(&self) -> Option<&'static str> {
        None
    }

    /// Where the file of a picture record is; `None` when it names none.
    fn picture(&self, record: &Map<String, Value>) -> Option<PictureSource> {
        let _ = record;
        None
    }
}

/// What an upload's answer says of its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadAnswer {
    /// The answer refuses the file after all, in these words.
    pub refused: Option<String>,
    /// Fields the server now holds on the record (its file's URL and
    /// hash), to store as the server's, never as a local edit.
    pub fields: Map<String, Value>,
}

/// Where a picture record's file is, as the picture cache reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureSource {
    /// The server's file name (its URL when it gives no name): a new one
    /// means a new file.
    pub file_name: String,
    /// The URL as the server gave it (it may be relative to the origin).
    pub url: Option<String>,
    /// The server's hash of the file, if it gives one: a new one means a
    /// new file.
    pub hash: Option<String>,
    /// The file itself, when the record carries it inline.
    pub inline: Option<Vec<u8>>,
}

// ----- the neutral values ---------------------------------------------------

/// One pending change, ready to send: the items of a save.
#[derive(Debug, Clone)]
pub struct Change {
    /// The collection.
    pub collection: String,
    /// The record's local id.
    pub local_id: i64,
    /// The change counter when the payload was built.
    pub counter: i64,
    /// The kind of change.
    pub op: Op,
    /// Server id, if known.
    pub server_id: Option<i64>,
    /// Client id, if any (non-zero).
    pub client_id: Option<i64>,
    /// The record as sent.
    pub payload: Map<String, Value>,
}

/// What a pull asks for.
#[derive(Debug, Clone, Copy)]
pub struct PullAsk<'a> {
    /// Each collection with the version it is asked from.
    pub wanted: &'a [(&'a CollectionDef, i64)],
    /// Records per page (0: unpaged).
    pub page_size: u32,
    /// Only orders of these types (empty: all), where the dialect can say
    /// so.
    pub order_types: &'a [i64],
}

/// What a pull asks next, after a page.
#[derive(Debug)]
pub enum NextAsk {
    /// These collections again, each from its new checkpoint.
    Again(Vec<String>),
    /// The pull is over.
    Done,
    /// The pull ends with this error once the page is applied.
    Fail(Error),
}

/// One pull's paging rule, kept by its codec from page to page.
pub trait Pager: Send {
    /// Records per page to ask for now (0: unpaged).
    fn page_size(&self) -> u32;

    /// The version a collection at `checkpoint` is asked from.
    fn ask_from(&self, checkpoint: i64) -> i64 {
        checkpoint
    }

    /// Reads a parsed page: drops what is no news, and says what to ask
    /// next. `checkpoint` gives a collection's checkpoint before the page.
    fn next(
        &mut self,
        entries: &mut Vec<PulledCollection<'_>>,
        checkpoint: &dyn Fn(&str) -> i64,
        asked: &[String],
        tracking_id: Option<&str>,
    ) -> NextAsk;

    /// True when this pull learned that the server's lower bound is
    /// inclusive (to be remembered for the next pulls).
    fn learned_inclusive_bound(&self) -> bool {
        false
    }
}

/// The answer to a save: one outcome per change of the batch, in batch
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveAnswer {
    /// Outcomes, aligned with the batch's changes.
    pub outcomes: Vec<SaveOutcome>,
}

/// What a whole refused save calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalScope {
    /// One record is to blame: park what the errors name, else find it by
    /// splitting the batch.
    Isolate,
    /// The request itself was found malformed: park the batch rather than
    /// loop on it.
    WholeBatch,
}

/// What the server said of this client at login (mahak dialect): who it is
/// on the Mahak side. Apps need `visitor_id` to write orders.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The visitor (shop, salesman, app) this client acts as.
    pub visitor_id: i64,
    /// The server's sync id of this login.
    pub sync_id: i64,
    /// The Mahak database.
    pub database_id: i64,
    /// The user's display name.
    pub user_title: String,
    /// The server's clock at login, as it wrote it.
    pub server_time: String,
}

/// A login answer, read.
pub struct LoginAnswer {
    /// The bearer token.
    pub token: String,
    /// When the token expires, on the server's clock, if known.
    pub expires: Option<DateTime<Utc>>,
    /// The server's clock at login, if the answer says (else its `Date`
    /// header is used).
    pub server_time: Option<DateTime<Utc>>,
    /// A token whose expiry is not known is renewed after this long (none:
    /// only when refused).
    pub max_age: Option<Duration>,
    /// Who this client is on the server's side, if the answer says.
    pub session: Option<Session>,
}

/// Which task endpoint a call goes to; its name comes from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEndpoint {
    /// `SolveOrderDispute`.
    OrderDispute,
    /// `SolveDispute`.
    Dispute,
    /// `Upload`.
    Upload,
}

impl TaskEndpoint {
    /// Its name among `endpoints`.
    pub fn name(self, endpoints: &Endpoints) -> &str {
        match self {
            TaskEndpoint::OrderDispute => &endpoints.order_dispute,
            TaskEndpoint::Dispute => &endpoints.dispute,
            TaskEndpoint::Upload => &endpoints.upload,
        }
    }
}

/// One call of the task queue, ready for the client.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The endpoint.
    pub endpoint: TaskEndpoint,
    /// The body.
    pub body: Vec<u8>,
    /// Its content type.
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The token as a query parameter too.
    pub token_query: Option<&'static str>,
    /// How the call may be repeated.
    pub kind: CallKind,
}

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

/// Parses a pull answer with `codec` and puts parents before children,
/// whatever order the server used.
pub(crate) fn parse_pull_sorted<'a>(
    codec: &dyn Codec,
    catalogue: &'a Catalogue,
    wanted: &'a [String],
    data: &'a str,
    tracking_id: Option<&str>,
) -> Result<Vec<PulledCollection<'a>>> {
    let mut out = codec.parse_pull(catalogue, wanted, data, tracking_id)?;
    out.sort_by_key(|c| catalogue.position(&c.def.name));
    Ok(out)
}

/// Reads a save answer's `data` text with `codec`; text that is not JSON is
/// a protocol error.
pub(crate) fn parse_save_text(
    codec: &dyn Codec,
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
    codec.parse_save(catalogue, changes, data, rules, tracking_id)
}

/// The records of `changes` grouped by collection, in catalogue order.
pub(crate) fn by_collection<'c>(
    catalogue: &'c Catalogue,
    changes: &[&'c Change],
) -> Vec<(&'c CollectionDef, Vec<&'c Change>)> {
    let mut by_coll: HashMap<&str, Vec<&Change>> = HashMap::new();
    for c in changes {
        by_coll.entry(c.collection.as_str()).or_default().push(c);
    }
    catalogue
        .iter()
        .filter_map(|def| by_coll.remove(def.name.as_str()).map(|list| (def, list)))
        .collect()
}
