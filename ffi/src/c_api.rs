//! The C API: opaque handles, `rowsync_<type>_<verb>` functions, a
//! `RowsyncResult` code with fixed values, and a per-thread message for the
//! last error (`rowsync_last_error_message`). All `unsafe` of the crate lives
//! here. Rules every entry point follows: every pointer is checked for NULL,
//! out-parameters are written only on success, everything handed out has a
//! NULL-safe `_free`, and no panic unwinds into C (`catch_unwind`). Records,
//! reports and settings cross as NUL-terminated UTF-8 JSON.

#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::Value;

use crate::engine::{parse_json, RowsyncEngine};
use crate::error::RowsyncError;
use crate::types::{RecordKey, WriteOp};

mod live;

pub use live::{RowsyncLiveQuery, RowsyncQueryCallback};

/// The result of every C call. Values are fixed: they never change meaning.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsyncResult {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was not valid UTF-8 or out of range.
    InvalidArgument = 2,
    /// The server could not be reached.
    Offline = 10,
    /// Login was refused.
    AuthFailed = 11,
    /// The server kept answering 429.
    RateLimited = 12,
    /// The server kept failing with 5xx.
    Server = 13,
    /// The server holds a newer version of a record.
    Conflict = 14,
    /// A record or value is not valid (unknown collection, bad JSON...).
    InvalidInput = 15,
    /// No such record.
    NotFound = 16,
    /// The server refused the data.
    Rejected = 17,
    /// The server's answer breaks the protocol.
    Protocol = 18,
    /// The configuration is not usable.
    Config = 19,
    /// The local database failed.
    Storage = 20,
    /// The engine was shut down.
    Interrupted = 21,
    /// Local changes are still pending.
    PendingChanges = 22,
    /// The server names another database or visitor than the replica's.
    ReplicaMismatch = 23,
    /// An encrypted replica and a missing or wrong key (nothing changed).
    WrongKey = 24,
    /// A file for the upload queue is larger than `max_upload_bytes`
    /// (nothing queued).
    FileTooLarge = 25,
    /// The server stalled at the same call twice in a row (retry later).
    Stalled = 26,
    /// Another user's changes wait on this (shared) device: the signed-in
    /// user's went out, that user's are never sent under this login (that
    /// user signs in and syncs, or export and discard them).
    PendingChangesOfAnotherUser = 27,
    /// A bug: the library panicked. The handle may be unusable.
    Panic = 99,
}

/// How a record is named in a C call.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsyncIdKind {
    /// By server id.
    Server = 1,
    /// By client id.
    Client = 2,
}

/// A live subscription of a C change callback; free it to unsubscribe.
pub struct RowsyncSubscription {
    _inner: rowsync::Subscription,
}

/// A C change callback: `events_json` is a JSON array of
/// `{"collection", "records": [{"server_id", "client_id"}], "origin"}`,
/// valid only during the call.
pub type RowsyncChangeCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, events_json: *const c_char)>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn code_of(e: &RowsyncError) -> RowsyncResult {
    match e {
        RowsyncError::Offline { .. } => RowsyncResult::Offline,
        RowsyncError::AuthFailed { .. } => RowsyncResult::AuthFailed,
        RowsyncError::RateLimited { .. } => RowsyncResult::RateLimited,
        RowsyncError::Server { .. } => RowsyncResult::Server,
        RowsyncError::Conflict { .. } => RowsyncResult::Conflict,
        RowsyncError::InvalidInput { .. } => RowsyncResult::InvalidInput,
        RowsyncError::NotFound { .. } => RowsyncResult::NotFound,
        RowsyncError::Rejected { .. } => RowsyncResult::Rejected,
        RowsyncError::Protocol { .. } => RowsyncResult::Protocol,
        RowsyncError::Config { .. } => RowsyncResult::Config,
        RowsyncError::Storage { .. } => RowsyncResult::Storage,
        RowsyncError::Interrupted => RowsyncResult::Interrupted,
        RowsyncError::PendingChanges { .. } => RowsyncResult::PendingChanges,
        RowsyncError::ReplicaMismatch { .. } => RowsyncResult::ReplicaMismatch,
        RowsyncError::WrongKey { .. } => RowsyncResult::WrongKey,
        RowsyncError::FileTooLarge { .. } => RowsyncResult::FileTooLarge,
        RowsyncError::Stalled { .. } => RowsyncResult::Stalled,
        RowsyncError::PendingChangesOfAnotherUser { .. } => {
            RowsyncResult::PendingChangesOfAnotherUser
        }
    }
}

/// A failure inside an entry point: a code and its message.
struct Fail(RowsyncResult, String);

impl From<RowsyncError> for Fail {
    fn from(e: RowsyncError) -> Self {
        Fail(code_of(&e), e.to_string())
    }
}

impl From<rowsync::Error> for Fail {
    fn from(e: rowsync::Error) -> Self {
        RowsyncError::from(e).into()
    }
}

fn null(name: &str) -> Fail {
    Fail(
        RowsyncResult::NullArgument,
        format!("argument `{name}` is NULL"),
    )
}

/// Runs `f` behind `catch_unwind`, records the message of a failure and
/// clears it on success.
fn guard(f: impl FnOnce() -> Result<(), Fail>) -> RowsyncResult {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            RowsyncResult::Ok
        }
        Ok(Err(Fail(code, msg))) => {
            set_error(&msg);
            code
        }
        Err(_) => {
            set_error("internal error: the rowsync library panicked");
            RowsyncResult::Panic
        }
    }
}

unsafe fn text<'a>(p: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(null(name));
    }
    CStr::from_ptr(p).to_str().map_err(|_| {
        Fail(
            RowsyncResult::InvalidArgument,
            format!("argument `{name}` is not valid UTF-8"),
        )
    })
}

unsafe fn handle<'a>(p: *const RowsyncEngine) -> Result<&'a RowsyncEngine, Fail> {
    p.as_ref().ok_or_else(|| null("engine"))
}

fn check_out<T>(p: *mut T, name: &str) -> Result<(), Fail> {
    if p.is_null() {
        Err(null(name))
    } else {
        Ok(())
    }
}

fn c_string(s: String) -> Result<*mut c_char, Fail> {
    CString::new(s).map(CString::into_raw).map_err(|_| {
        Fail(
            RowsyncResult::Storage,
            "a string to return contains a NUL byte".into(),
        )
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Fail> {
    serde_json::to_string(v).map_err(|e| Fail(RowsyncResult::Storage, format!("JSON error: {e}")))
}

fn record_id(kind: u32, id: i64) -> Result<rowsync::RecordId, Fail> {
    match kind {
        k if k == RowsyncIdKind::Server as u32 => Ok(rowsync::RecordId::Server(id)),
        k if k == RowsyncIdKind::Client as u32 => Ok(rowsync::RecordId::Client(id)),
        _ => Err(Fail(
            RowsyncResult::InvalidArgument,
            format!("id kind {kind} is neither ROWSYNC_ID_KIND_SERVER nor ROWSYNC_ID_KIND_CLIENT"),
        )),
    }
}

/// The message of the last failed call on this thread ("" after a success).
/// The pointer stays valid until the next rowsync call on this thread; never
/// NULL; do not free it.
#[no_mangle]
pub extern "C" fn rowsync_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// A static, never-NULL name of a result code (e.g. "ROWSYNC_RESULT_OFFLINE").
#[no_mangle]
pub extern "C" fn rowsync_result_name(result: u32) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"ROWSYNC_RESULT_OK",
        1 => c"ROWSYNC_RESULT_NULL_ARGUMENT",
        2 => c"ROWSYNC_RESULT_INVALID_ARGUMENT",
        10 => c"ROWSYNC_RESULT_OFFLINE",
        11 => c"ROWSYNC_RESULT_AUTH_FAILED",
        12 => c"ROWSYNC_RESULT_RATE_LIMITED",
        13 => c"ROWSYNC_RESULT_SERVER",
        14 => c"ROWSYNC_RESULT_CONFLICT",
        15 => c"ROWSYNC_RESULT_INVALID_INPUT",
        16 => c"ROWSYNC_RESULT_NOT_FOUND",
        17 => c"ROWSYNC_RESULT_REJECTED",
        18 => c"ROWSYNC_RESULT_PROTOCOL",
        19 => c"ROWSYNC_RESULT_CONFIG",
        20 => c"ROWSYNC_RESULT_STORAGE",
        21 => c"ROWSYNC_RESULT_INTERRUPTED",
        22 => c"ROWSYNC_RESULT_PENDING_CHANGES",
        23 => c"ROWSYNC_RESULT_REPLICA_MISMATCH",
        24 => c"ROWSYNC_RESULT_WRONG_KEY",
        25 => c"ROWSYNC_RESULT_FILE_TOO_LARGE",
        26 => c"ROWSYNC_RESULT_STALLED",
        27 => c"ROWSYNC_RESULT_PENDING_CHANGES_OF_ANOTHER_USER",
        99 => c"ROWSYNC_RESULT_PANIC",
        _ => c"ROWSYNC_RESULT_UNKNOWN",
    };
    s.as_ptr()
}

/// Frees a string returned by this library. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rowsync_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(CString::from_raw(s))));
    }
}

/// Opens (or creates) the replica at `path` (":memory:" for an in-memory
/// one). On success `*out` receives a handle to free with
/// `rowsync_engine_free`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_open(
    path: *const c_char,
    out: *mut *mut RowsyncEngine,
) -> RowsyncResult {
    guard(|| {
        let path = text(path, "path")?;
        check_out(out, "out")?;
        let e = Arc::new(RowsyncEngine::open_core(path)?);
        *out = Arc::into_raw(e).cast_mut();
        Ok(())
    })
}

/// Opens (or creates) the replica at `path`, encrypted with a key: either
/// `key_len` raw bytes (exactly 32) when `is_passphrase` is false, or a
/// UTF-8 passphrase of `key_len` bytes. A missing or wrong key is
/// `ROWSYNC_RESULT_WRONG_KEY` and leaves the file as it was. The key is
/// copied and never stored; the caller may wipe its buffer at once.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_open_encrypted(
    path: *const c_char,
    key: *const u8,
    key_len: usize,
    is_passphrase: bool,
    out: *mut *mut RowsyncEngine,
) -> RowsyncResult {
    guard(|| {
        let path = text(path, "path")?;
        check_out(out, "out")?;
        if key.is_null() {
            return Err(Fail(RowsyncResult::NullArgument, "key is NULL".into()));
        }
        // SAFETY: the caller passes `key_len` readable bytes at `key`.
        let bytes = std::slice::from_raw_parts(key, key_len);
        let key = crate::engine::db_key(bytes, is_passphrase)?;
        let e = Arc::new(RowsyncEngine::open_encrypted_core(path, key)?);
        *out = Arc::into_raw(e).cast_mut();
        Ok(())
    })
}

/// Closes the engine and frees its handle. NULL is ignored. No other call
/// on the handle may be running or follow.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_free(engine: *mut RowsyncEngine) {
    if !engine.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(Arc::from_raw(engine.cast_const()))
        }));
    }
}

/// Replaces the settings with `settings_json`, a JSON object whose fields
/// (all optional, the others kept) are those of the engine's settings, e.g.
/// `{"base_url":"https://host/API/v3","dialect":"mahak","page_size":500}`.
/// `dialect` is `"mahak"` (the real server, the default) or
/// `"documented"`; switching it on a replica that holds data fails with
/// `ROWSYNC_RESULT_CONFIG` until `rowsync_engine_wipe`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_configure(
    engine: *const RowsyncEngine,
    settings_json: *const c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let text = text(settings_json, "settings_json")?;
        let current = serde_json::to_value(e.core().settings()?).unwrap_or(Value::Null);
        let mut merged = match current {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        match parse_json("settings", text)? {
            Value::Object(m) => merged.extend(m),
            _ => {
                return Err(Fail(
                    RowsyncResult::InvalidInput,
                    "settings must be a JSON object".into(),
                ))
            }
        }
        let settings: rowsync::Settings = serde_json::from_value(Value::Object(merged))
            .map_err(|err| Fail(RowsyncResult::InvalidInput, format!("bad settings: {err}")))?;
        e.core().configure(settings)?;
        Ok(())
    })
}

/// The current settings as JSON in `*out_json`, the object
/// `rowsync_engine_configure` takes (with `"dialect"`; never a password).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_settings(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().settings()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// Supplies the login data (kept in memory only).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_set_credentials(
    engine: *const RowsyncEngine,
    username: *const c_char,
    password: *const c_char,
    database_id: i64,
    package_number: i64,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let credentials = rowsync::Credentials {
            username: text(username, "username")?.to_string(),
            password: text(password, "password")?.to_string(),
            database_id,
            package_number,
        };
        e.core().set_credentials(credentials)?;
        Ok(())
    })
}

/// The shared body of create and put: parse the record, write it, hand the
/// stored record out.
unsafe fn write_record(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    record_json: *const c_char,
    out_json: *mut *mut c_char,
    write: fn(&rowsync::Engine, &str, serde_json::Value) -> rowsync::Result<serde_json::Value>,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let v = parse_json(collection, text(record_json, "record_json")?)?;
        check_out(out_json, "out_json")?;
        let s = c_string(write(e.core(), collection, v)?.to_string())?;
        *out_json = s;
        Ok(())
    })
}

/// Creates a record from a JSON object; on success `*out_json` receives the
/// record as stored (free with `rowsync_string_free`).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_create(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    record_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    write_record(
        engine,
        collection,
        record_json,
        out_json,
        rowsync::Engine::create,
    )
}

/// Creates, or updates when the JSON carries the id of an existing record;
/// on success `*out_json` receives the record as stored.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_put(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    record_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    write_record(
        engine,
        collection,
        record_json,
        out_json,
        rowsync::Engine::put,
    )
}

/// Sets the fields of `patch_json` on the record `kind`/`id`; on success
/// `*out_json` receives the record as stored.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_update(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
    patch_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let rid = record_id(kind, id)?;
        let v = parse_json(collection, text(patch_json, "patch_json")?)?;
        check_out(out_json, "out_json")?;
        let s = c_string(e.core().update(collection, rid, v)?.to_string())?;
        *out_json = s;
        Ok(())
    })
}

/// One operation of `rowsync_engine_write_group`, as the C caller writes it.
#[derive(serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum GroupOp {
    Create {
        collection: String,
        record: serde_json::Value,
        #[serde(default)]
        parent_op: Option<u32>,
    },
    Update {
        collection: String,
        #[serde(default)]
        id: Option<i64>,
        #[serde(default)]
        client_id: Option<i64>,
        patch: serde_json::Value,
    },
    Put {
        collection: String,
        record: serde_json::Value,
    },
    Delete {
        collection: String,
        #[serde(default)]
        id: Option<i64>,
        #[serde(default)]
        client_id: Option<i64>,
    },
}

fn group_key(collection: &str, id: Option<i64>, client_id: Option<i64>) -> Result<RecordKey, Fail> {
    match (id, client_id) {
        (Some(id), None) => Ok(RecordKey::Server { id }),
        (None, Some(id)) => Ok(RecordKey::Client { id }),
        _ => Err(RowsyncError::InvalidInput {
            collection: collection.to_string(),
            field: "id".into(),
            reason: "give exactly one of `id` (server id) and `client_id`".into(),
        }
        .into()),
    }
}

impl GroupOp {
    fn into_write_op(self) -> Result<WriteOp, Fail> {
        Ok(match self {
            GroupOp::Create {
                collection,
                record,
                parent_op,
            } => WriteOp::Create {
                collection,
                record_json: record.to_string(),
                parent_op,
            },
            GroupOp::Update {
                collection,
                id,
                client_id,
                patch,
            } => WriteOp::Update {
                key: group_key(&collection, id, client_id)?,
                collection,
                patch_json: patch.to_string(),
            },
            GroupOp::Put { collection, record } => WriteOp::Put {
                collection,
                record_json: record.to_string(),
            },
            GroupOp::Delete {
                collection,
                id,
                client_id,
            } => WriteOp::Delete {
                key: group_key(&collection, id, client_id)?,
                collection,
            },
        })
    }
}

/// Runs several writes as one group: they commit together and are pushed
/// together (an order with its lines), or nothing is stored. `ops_json` is a
/// JSON array of operations:
/// `{"op":"create","collection":C,"record":{...},"parent_op":N}` (with
/// `parent_op`, the record names the record stored by operation N of the
/// same group, counted from 0, through the catalogue's link between the two
/// collections: an order line's `orderClientId`, an order's
/// `personClientId`),
/// `{"op":"update","collection":C,"id":N|"client_id":N,"patch":{...}}`,
/// `{"op":"put","collection":C,"record":{...}}`,
/// `{"op":"delete","collection":C,"id":N|"client_id":N}`.
/// On success `*out_json` receives a JSON array with each operation's
/// record as stored (null for a delete); free it with `rowsync_string_free`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_write_group(
    engine: *const RowsyncEngine,
    ops_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let ops: Vec<GroupOp> =
            serde_json::from_str(text(ops_json, "ops_json")?).map_err(|err| {
                Fail::from(RowsyncError::InvalidInput {
                    collection: String::new(),
                    field: "ops_json".into(),
                    reason: format!("not a list of operations: {err}"),
                })
            })?;
        let ops = ops
            .into_iter()
            .map(GroupOp::into_write_op)
            .collect::<Result<Vec<_>, Fail>>()?;
        check_out(out_json, "out_json")?;
        // Each stored record is already JSON text: join them into an array.
        let stored = e.write_group_core(ops)?;
        let items: Vec<String> = stored
            .into_iter()
            .map(|r| r.unwrap_or_else(|| "null".to_string()))
            .collect();
        *out_json = c_string(format!("[{}]", items.join(",")))?;
        Ok(())
    })
}

/// Where the record `kind`/`id` stands; on success `*out_json` receives
/// `{"state": ..., "words": ..., details}` (see `RowsyncEngine::explain`).
/// A record the replica never held is `{"state": "never_seen", ...}`, not
/// an error.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_explain(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let id = record_id(kind, id)?;
        check_out(out_json, "out_json")?;
        let json = crate::engine::explain_json(e.core(), collection, id)?;
        *out_json = c_string(json)?;
        Ok(())
    })
}

/// Deletes the record `kind`/`id`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_delete(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        e.core().delete(collection, record_id(kind, id)?)?;
        Ok(())
    })
}

/// Reads the live record `kind`/`id`; on success `*out_json` receives it.
/// A missing record is `ROWSYNC_RESULT_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_get(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let rid = record_id(kind, id)?;
        check_out(out_json, "out_json")?;
        let v = e.core().get(collection, rid)?.ok_or_else(|| {
            Fail(
                RowsyncResult::NotFound,
                format!("no record `{rid}` in `{collection}`"),
            )
        })?;
        *out_json = c_string(v.to_string())?;
        Ok(())
    })
}

/// Lists up to `limit` live records after cursor `after` (0 for the start);
/// on success `*out_json` receives `{"records":[...],"next_cursor":N|null}`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_list(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    limit: u64,
    after: i64,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        check_out(out_json, "out_json")?;
        let page = e.core().list(
            collection,
            &rowsync::ListOptions {
                limit,
                after: (after > 0).then_some(after),
                ..rowsync::ListOptions::default()
            },
        )?;
        let v = serde_json::json!({"records": page.records, "next_cursor": page.next_cursor});
        *out_json = c_string(v.to_string())?;
        Ok(())
    })
}

/// Runs one sync cycle. On success `*out_report_json` (if not NULL)
/// receives the sync report as JSON; its `clock_skew_seconds` is the
/// device's clock minus the server's at the last login (positive: the
/// device is ahead; null when the server did not say its time), and
/// `clock_skew_warning` is true past the settings'
/// `clock_skew_warning_seconds` (780 by default; nothing is refused).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_sync(
    engine: *const RowsyncEngine,
    out_report_json: *mut *mut c_char,
) -> RowsyncResult {
    run_sync(engine, out_report_json, false)
}

/// One sync (every collection when `all`), its report into
/// `*out_report_json` when that is not NULL.
unsafe fn run_sync(
    engine: *const RowsyncEngine,
    out_report_json: *mut *mut c_char,
    all: bool,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let report = if all {
            e.sync_all_core()?
        } else {
            e.sync_core()?
        };
        if !out_report_json.is_null() {
            *out_report_json = c_string(to_json(&report)?)?;
        }
        Ok(())
    })
}

/// Runs one sync cycle that pulls every collection now, whatever its
/// schedule (`rowsync_engine_sync` pulls the due ones); as
/// `rowsync_engine_sync` otherwise. The report's `pulled_collections` says
/// which were pulled.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_sync_all(
    engine: *const RowsyncEngine,
    out_report_json: *mut *mut c_char,
) -> RowsyncResult {
    run_sync(engine, out_report_json, true)
}

/// Syncs now the collections named in `collections` (comma-separated, for
/// example `"products,visitorProducts"`): pulls them with their link
/// collections, whatever their schedule, and pushes nothing; as
/// `rowsync_engine_sync` otherwise (one sync at a time, the sync
/// deadline). `ROWSYNC_RESULT_INVALID_INPUT` for a name not in the
/// catalogue and `ROWSYNC_RESULT_CONFIG` for no name or an unwanted
/// collection, before anything is done.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_sync_collections(
    engine: *const RowsyncEngine,
    collections: *const c_char,
    out_report_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let names: Vec<String> = text(collections, "collections")?
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        let report = e.sync_collections_core(&names)?;
        if !out_report_json.is_null() {
            *out_report_json = c_string(to_json(&report)?)?;
        }
        Ok(())
    })
}

/// The running totals of every sync the replica ran, as JSON in
/// `*out_json`: `{"syncs", "failed_syncs", "since", "last_sync_at",
/// "totals": {"requests", "login_requests", "bytes_sent",
/// "wire_bytes_sent", "bytes_received", "wire_bytes_received", "retries":
/// {"transport", "stall", "server_error", "rate_limited", "cut_short",
/// "token_refresh"}, "phases": {"login_ms", "pull_ms", "apply_ms",
/// "push_ms", "tasks_ms"}}, "collections": {name: {"pulled", "pushed",
/// ...}}}` (each sync report's `metrics` has the shape of `totals`).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_metrics(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().metrics()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// Sets (or, with NULL, removes) the secret push hints are signed with:
/// `secret_len` bytes. Memory only.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_set_hint_secret(
    engine: *const RowsyncEngine,
    secret: *const u8,
    secret_len: usize,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let secret = if secret.is_null() {
            None
        } else {
            // SAFETY: the caller passes `secret_len` readable bytes.
            Some(std::slice::from_raw_parts(secret, secret_len))
        };
        e.core().set_hint_secret(secret)?;
        Ok(())
    })
}

/// Applies a push hint: `payload_len` bytes of payload as received and the
/// hex HMAC-SHA256 `signature`. On success `*out_json` receives
/// `{"outcome": "applied", "due": [...], "unknown": [...]}` or
/// `{"outcome": "duplicate"}`. A bad signature is
/// `ROWSYNC_RESULT_INVALID_INPUT` and changes nothing.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_apply_hint(
    engine: *const RowsyncEngine,
    payload: *const u8,
    payload_len: usize,
    signature: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        if payload.is_null() {
            return Err(Fail(RowsyncResult::NullArgument, "payload is NULL".into()));
        }
        let signature = text(signature, "signature")?;
        check_out(out_json, "out_json")?;
        // SAFETY: the caller passes `payload_len` readable bytes.
        let bytes = std::slice::from_raw_parts(payload, payload_len);
        let outcome = e.core().apply_hint(bytes, signature)?;
        *out_json = c_string(to_json(&outcome)?)?;
        Ok(())
    })
}

/// The engine's status as JSON in `*out_json`: `{"dialect": "mahak" |
/// "documented", "session": {...} | null (as `rowsync_engine_session`),
/// "connection", "syncing", "counts": {"pending", "parked", "dead_letters",
/// "conflicts", "in_doubt"}, "checkpoints", "last_sync", "last_error",
/// "uploads", "clock_skew_seconds": seconds or null, "clock_skew_warning"}`.
/// `in_doubt` counts creates whose save answer was lost: the next sync
/// confirms them before anything is sent again.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_status(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().status()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// A URL the server gave (a picture's `url`) made absolute against the
/// server's origin, in `*out_url` (free it with `rowsync_string_free`): the
/// real server's may be relative (`/Files/12.jpg`). Spaces and Persian
/// letters are percent-encoded. `ROWSYNC_RESULT_CONFIG` when no server URL is
/// configured or `url` is empty.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_absolute_url(
    engine: *const RowsyncEngine,
    url: *const c_char,
    out_url: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let url = text(url, "url")?;
        check_out(out_url, "out_url")?;
        *out_url = c_string(e.core().absolute_url(url)?)?;
        Ok(())
    })
}

/// The local file of picture `picture_id` (its server id, `pictureId`) in
/// the picture cache, in `*out_path` (free it with `rowsync_string_free`),
/// or NULL in `*out_path` while there is none (not fetched yet, failed,
/// evicted, its record deleted, or the cache off): both are
/// `ROWSYNC_RESULT_OK`. A path given is a whole file; asking counts as a
/// use for the eviction order.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_picture_path(
    engine: *const RowsyncEngine,
    picture_id: i64,
    out_path: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_path, "out_path")?;
        let path = match e.core().picture_path(picture_id)? {
            Some(p) => c_string(p.to_string_lossy().into_owned())?,
            None => std::ptr::null_mut(),
        };
        *out_path = path;
        Ok(())
    })
}

/// Runs the picture cache now (fetches the pictures wanted that have no
/// file yet, removes those whose record went, evicts past the cap; no login
/// needed), with what it did as JSON in `*out_json`: `{"wanted", "fetched",
/// "failed", "removed", "evicted", "cached", "bytes", "bytes_fetched"}`. A
/// picture that fails is counted, never an error.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_sync_pictures(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().sync_pictures()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// What the server said of this client at its last login (mahak dialect),
/// as JSON in `*out_json`: `{"visitor_id", "sync_id", "database_id",
/// "user_title", "server_time"}`, or `null` before the first login. Orders
/// carry `visitor_id`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_session(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().session()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// The dead letters as a JSON array in `*out_json`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_dead_letters(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().dead_letters()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// Puts dead letter `id` back in the outbox.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_retry_dead_letter(
    engine: *const RowsyncEngine,
    id: i64,
) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().retry_dead_letter(id)?;
        Ok(())
    })
}

/// Drops dead letter `id` and its changes.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_discard_dead_letter(
    engine: *const RowsyncEngine,
    id: i64,
) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().discard_dead_letter(id)?;
        Ok(())
    })
}

/// Queues the file at `path` for the record `kind`/`id` of `collection`
/// (`/Sync/Upload`), under `file_name`: the bytes are copied into the
/// replica now, so the app may delete its file; a sync sends it once the
/// record has a server id. `*out_id` receives the upload's id. A file over
/// the settings' `max_upload_bytes` is `ROWSYNC_RESULT_FILE_TOO_LARGE`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_queue_upload(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
    path: *const c_char,
    file_name: *const c_char,
    out_id: *mut i64,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let path = text(path, "path")?;
        let file_name = text(file_name, "file_name")?;
        check_out(out_id, "out_id")?;
        let source = rowsync::UploadSource::Path(path.into());
        *out_id = e
            .core()
            .queue_upload(collection, record_id(kind, id)?, source, file_name)?;
        Ok(())
    })
}

/// [`rowsync_engine_queue_upload`] with the file's `len` bytes at `data`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_queue_upload_bytes(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    kind: u32,
    id: i64,
    data: *const u8,
    len: usize,
    file_name: *const c_char,
    out_id: *mut i64,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let file_name = text(file_name, "file_name")?;
        check_out(out_id, "out_id")?;
        let bytes = match (data.is_null(), len) {
            (_, 0) => Vec::new(),
            (true, _) => return Err(null("data")),
            // SAFETY: the caller passes `len` readable bytes at `data`.
            (false, n) => std::slice::from_raw_parts(data, n).to_vec(),
        };
        let source = rowsync::UploadSource::Bytes(bytes);
        *out_id = e
            .core()
            .queue_upload(collection, record_id(kind, id)?, source, file_name)?;
        Ok(())
    })
}

/// The queued uploads and disputes (parked ones included) as a JSON array
/// in `*out_json`: `[{"id", "kind", "request_id", "collection", "record",
/// "file_name", "size", "items", "state": {"state": ...}, "attempts",
/// "last_error", "queued_at"}]`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_tasks(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        *out_json = c_string(to_json(&e.core().tasks()?)?)?;
        Ok(())
    })
}

/// Removes queued upload or dispute `id` (not a parked one).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_cancel_task(
    engine: *const RowsyncEngine,
    id: i64,
) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().cancel_task(id)?;
        Ok(())
    })
}

/// Parses a JSON array of dispute items given by the app.
unsafe fn dispute_items<T: serde::de::DeserializeOwned>(
    json: *const c_char,
    name: &str,
) -> Result<Vec<T>, Fail> {
    serde_json::from_str(text(json, name)?)
        .map_err(|err| RowsyncError::bad_json("disputes", &err).into())
}

/// Queues `SolveOrderDispute` for `items_json`, a JSON array of `{"order_id",
/// "code", "resolution", "reason", "amount"}`; `*out_json` receives the
/// queued tasks' ids as a JSON array.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_solve_order_dispute(
    engine: *const RowsyncEngine,
    items_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let items = dispute_items(items_json, "items_json")?;
        check_out(out_json, "out_json")?;
        *out_json = c_string(to_json(&e.core().solve_order_dispute(items)?)?)?;
        Ok(())
    })
}

/// Queues `SolveDispute` for records of `collection`: `items_json` is a JSON
/// array of `{"id", "row_version", "resolution", "reason"}`; `*out_json`
/// receives the queued tasks' ids as a JSON array.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_solve_dispute(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    items_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        let items = dispute_items(items_json, "items_json")?;
        check_out(out_json, "out_json")?;
        *out_json = c_string(to_json(&e.core().solve_dispute(collection, items)?)?)?;
        Ok(())
    })
}

/// Queues the `SolveDispute` requests that tell the server which records of
/// `collection` the replica holds, at which row versions (the vendor
/// plugin's repair of a diverged replica); `*out_json` receives the queued
/// tasks' ids as a JSON array.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_reconcile_dispute(
    engine: *const RowsyncEngine,
    collection: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let collection = text(collection, "collection")?;
        check_out(out_json, "out_json")?;
        *out_json = c_string(to_json(&e.core().reconcile_dispute(collection)?)?)?;
        Ok(())
    })
}

/// The conflict log as a JSON array in `*out_json`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_conflicts(
    engine: *const RowsyncEngine,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().conflicts()?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// The newest `limit` sync-log rows as a JSON array in `*out_json`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_sync_log(
    engine: *const RowsyncEngine,
    limit: u32,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let s = to_json(&e.core().sync_log(limit)?)?;
        *out_json = c_string(s)?;
        Ok(())
    })
}

/// Forgets the token and credentials, keeps all data.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_disconnect(engine: *const RowsyncEngine) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().disconnect()?;
        Ok(())
    })
}

/// Deletes all local data; refused while changes are pending unless `force`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_wipe(
    engine: *const RowsyncEngine,
    force: bool,
) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().wipe(force)?;
        Ok(())
    })
}

/// The changes `user` made that are still in the outbox (a shared device
/// changed hands); on success `*out_json` receives them as a JSON array
/// (see `RowsyncEngine::export_pending`). The export is remembered: only
/// then does `rowsync_engine_discard_pending` drop them.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_export_pending(
    engine: *const RowsyncEngine,
    user: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let user = text(user, "user")?;
        check_out(out_json, "out_json")?;
        let json = crate::engine::export_json(e.core(), user)?;
        *out_json = c_string(json)?;
        Ok(())
    })
}

/// Discards the changes `user` made that are still in the outbox, each kept
/// in the discard trail first; `*out_count` receives how many went.
/// `ROWSYNC_RESULT_PENDING_CHANGES` (nothing dropped) unless
/// `rowsync_engine_export_pending` exported these very changes.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_discard_pending(
    engine: *const RowsyncEngine,
    user: *const c_char,
    out_count: *mut u64,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let user = text(user, "user")?;
        check_out(out_count, "out_count")?;
        *out_count = e.core().discard_pending(user)?;
        Ok(())
    })
}

/// A C status callback: `state_json` is the connection state as JSON,
/// valid only during the call.
pub type RowsyncStatusCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, state_json: *const c_char)>;

/// Interrupts a running sync's waits (safe from another thread).
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_shutdown(engine: *const RowsyncEngine) -> RowsyncResult {
    guard(|| {
        handle(engine)?.core().shutdown();
        Ok(())
    })
}

struct CListener {
    callback: unsafe extern "C" fn(*mut c_void, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the caller of `rowsync_engine_subscribe_changes` promises that the
// callback and `user_data` may be used from any thread.
unsafe impl Send for CListener {}
unsafe impl Sync for CListener {}

impl CListener {
    /// Hands `value` to the callback as JSON text, valid during the call.
    fn call<T: serde::Serialize + ?Sized>(&self, value: &T) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        let Ok(c) = CString::new(json) else {
            return;
        };
        // SAFETY: see the `Send`/`Sync` note; `c` outlives the call.
        unsafe { (self.callback)(self.user_data, c.as_ptr()) }
    }
}

impl rowsync::ChangeListener for CListener {
    fn on_change(&self, events: &[rowsync::ChangeEvent]) {
        self.call(events)
    }
}

impl rowsync::StatusListener for CListener {
    fn on_status(&self, state: &rowsync::ConnectionState) {
        self.call(state)
    }
}

/// The shared body of the two subscribe functions: check the arguments,
/// wrap the callback, hand the subscription out.
unsafe fn subscribe(
    engine: *const RowsyncEngine,
    callback: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
    user_data: *mut c_void,
    out: *mut *mut RowsyncSubscription,
    add: fn(&rowsync::Engine, Arc<CListener>) -> rowsync::Subscription,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let callback = callback.ok_or_else(|| null("callback"))?;
        check_out(out, "out")?;
        let sub = add(
            e.core(),
            Arc::new(CListener {
                callback,
                user_data,
            }),
        );
        *out = Box::into_raw(Box::new(RowsyncSubscription { _inner: sub }));
        Ok(())
    })
}

/// Calls `callback(user_data, events_json)` after every local write and
/// applied sync step until `*out` is freed with `rowsync_subscription_free`.
/// The callback may run on any thread that writes or syncs, and on the
/// engine's own apply thread during a sync's pull; `user_data` must stay
/// valid until the subscription is freed.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_subscribe_changes(
    engine: *const RowsyncEngine,
    callback: RowsyncChangeCallback,
    user_data: *mut c_void,
    out: *mut *mut RowsyncSubscription,
) -> RowsyncResult {
    subscribe(engine, callback, user_data, out, |core, l| {
        core.subscribe_changes(l)
    })
}

/// Calls `callback(user_data, state_json)` with the connection state at
/// once (before this function returns), then on every change, until `*out`
/// is freed with `rowsync_subscription_free`. `state_json` is
/// `{"state":"unknown"|"online"|"syncing"|"auth_failed"}` or
/// `{"state":"offline","next_attempt":RFC3339-or-null}` (and the others of
/// `ConnectionState`), valid only during the call. A login that finds the
/// device's clock further than `clock_skew_warning_seconds` from the
/// server's tells the notice `{"state":"clock_skewed","skew_seconds":N}`
/// once; the state then goes on as before. The callback may run on any thread that syncs; `user_data`
/// must stay valid until the subscription is freed.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_subscribe_status(
    engine: *const RowsyncEngine,
    callback: RowsyncStatusCallback,
    user_data: *mut c_void,
    out: *mut *mut RowsyncSubscription,
) -> RowsyncResult {
    subscribe(engine, callback, user_data, out, |core, l| {
        core.subscribe_status(l)
    })
}

/// Unsubscribes and frees the subscription. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn rowsync_subscription_free(sub: *mut RowsyncSubscription) {
    if !sub.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(sub))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        unsafe { CStr::from_ptr(rowsync_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn every_result_has_its_header_name() {
        use RowsyncResult as R;
        let all = [
            (R::Ok, "OK"),
            (R::NullArgument, "NULL_ARGUMENT"),
            (R::InvalidArgument, "INVALID_ARGUMENT"),
            (R::Offline, "OFFLINE"),
            (R::AuthFailed, "AUTH_FAILED"),
            (R::RateLimited, "RATE_LIMITED"),
            (R::Server, "SERVER"),
            (R::Conflict, "CONFLICT"),
            (R::InvalidInput, "INVALID_INPUT"),
            (R::NotFound, "NOT_FOUND"),
            (R::Rejected, "REJECTED"),
            (R::Protocol, "PROTOCOL"),
            (R::Config, "CONFIG"),
            (R::Storage, "STORAGE"),
            (R::Interrupted, "INTERRUPTED"),
            (R::PendingChanges, "PENDING_CHANGES"),
            (R::ReplicaMismatch, "REPLICA_MISMATCH"),
            (R::WrongKey, "WRONG_KEY"),
            (R::FileTooLarge, "FILE_TOO_LARGE"),
            (R::Stalled, "STALLED"),
            (
                R::PendingChangesOfAnotherUser,
                "PENDING_CHANGES_OF_ANOTHER_USER",
            ),
            (R::Panic, "PANIC"),
        ];
        let header = include_str!("../include/rowsync.h");
        for (r, name) in all {
            let name = format!("ROWSYNC_RESULT_{name}");
            let got = unsafe { CStr::from_ptr(rowsync_result_name(r as u32)) };
            assert_eq!(got.to_str().expect("utf-8"), name);
            assert!(
                header.contains(&format!("{name} = {},", r as u32)),
                "{name} in the header"
            );
        }
    }

    #[test]
    fn the_new_core_errors_map_to_what_an_app_acts_on() {
        let in_doubt = RowsyncError::from(rowsync::Error::InDoubt {
            message: "the answer was lost".into(),
            tracking_id: Some("t1".into()),
        });
        assert!(matches!(in_doubt, RowsyncError::Offline { .. }));
        assert_eq!(code_of(&in_doubt), RowsyncResult::Offline);
        let replica = RowsyncError::from(rowsync::Error::ReplicaMismatch {
            what: "visitorId".into(),
            replica: 31,
            server: 99,
        });
        assert_eq!(
            replica,
            RowsyncError::ReplicaMismatch {
                what: "visitorId".into(),
                replica: 31,
                server: 99
            }
        );
        assert_eq!(code_of(&replica) as u32, 23);
        let dialect = RowsyncError::from(rowsync::Error::DialectMismatch {
            replica: "mahak".into(),
            asked: "documented".into(),
        });
        assert!(
            matches!(&dialect, RowsyncError::Config { detail } if detail.contains("documented"))
        );
        assert_eq!(code_of(&dialect), RowsyncResult::Config);
        let handover = RowsyncError::from(rowsync::Error::PendingChangesOfAnotherUser {
            user: "user1".into(),
            count: 2,
        });
        assert_eq!(
            handover,
            RowsyncError::PendingChangesOfAnotherUser {
                user: "user1".into(),
                count: 2
            }
        );
        assert_eq!(code_of(&handover) as u32, 27);
    }

    #[test]
    fn null_arguments_are_refused_and_outputs_untouched() {
        let mut out: *mut RowsyncEngine = std::ptr::null_mut();
        let r = unsafe { rowsync_engine_open(std::ptr::null(), &mut out) };
        assert_eq!(r, RowsyncResult::NullArgument);
        assert!(out.is_null());
        assert!(last().contains("path"));
        unsafe {
            rowsync_engine_free(std::ptr::null_mut());
            rowsync_string_free(std::ptr::null_mut());
            rowsync_subscription_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn round_trip_and_not_found() {
        let mut e: *mut RowsyncEngine = std::ptr::null_mut();
        assert_eq!(
            unsafe { rowsync_engine_open(c":memory:".as_ptr(), &mut e) },
            RowsyncResult::Ok
        );
        let mut out: *mut c_char = std::ptr::null_mut();
        let r = unsafe {
            rowsync_engine_create(
                e,
                c"products".as_ptr(),
                c"{\"name\":\"x\"}".as_ptr(),
                &mut out,
            )
        };
        assert_eq!(r, RowsyncResult::Ok);
        assert!(!out.is_null());
        unsafe { rowsync_string_free(out) };
        let mut got: *mut c_char = std::ptr::null_mut();
        let r = unsafe {
            rowsync_engine_get(
                e,
                c"products".as_ptr(),
                RowsyncIdKind::Server as u32,
                1,
                &mut got,
            )
        };
        assert_eq!(r, RowsyncResult::NotFound);
        assert!(got.is_null());
        assert!(!last().is_empty());
        unsafe { rowsync_engine_free(e) };
    }
}
