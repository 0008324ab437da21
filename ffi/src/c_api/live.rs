//! The C face of live queries: `rowsync_engine_query` (the records now) and
//! `rowsync_engine_watch` (a callback with user data, told the records at
//! once and after each change of them), whose handle
//! `rowsync_live_query_free` stops. A query and its results cross as JSON.
//! The rules of the parent module hold: every pointer checked, `*out`
//! written only on success, no panic into C.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde_json::Value;

use super::{c_string, check_out, code_of, guard, handle, null, text, to_json, Fail};
use super::{RowsyncEngine, RowsyncResult};
use crate::error::RowsyncError;

/// A watched query; free it with `rowsync_live_query_free` to stop it.
pub struct RowsyncLiveQuery {
    inner: rowsync::LiveQuery,
}

/// A C live-query callback. On `ROWSYNC_RESULT_OK`, `json` is the query's
/// records as a JSON array of objects; otherwise a run failed (the watch
/// goes on) and `json` is the error's message. `json` is valid only during
/// the call.
pub type RowsyncQueryCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, result: RowsyncResult, json: *const c_char),
>;

/// `query_json` read as a query:
/// `{"collection": "orders", "filters": {"orderType": 201},
///   "order": {"field": "orderDate", "descending": true}, "limit": 50}`
/// (`filters`, `order` and `limit` optional).
unsafe fn parse_query(query_json: *const c_char) -> Result<rowsync::Query, Fail> {
    let text = text(query_json, "query_json")?;
    serde_json::from_str(text).map_err(|e| {
        RowsyncError::InvalidInput {
            collection: String::new(),
            field: "query_json".into(),
            reason: format!("not a query: {e}"),
        }
        .into()
    })
}

/// The records `query_json` (see `rowsync_engine_watch`) returns now: on
/// success `*out_json` receives a JSON array of objects, to free with
/// `rowsync_string_free`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_query(
    engine: *const RowsyncEngine,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        check_out(out_json, "out_json")?;
        let query = parse_query(query_json)?;
        let records = e.core().query(&query)?;
        *out_json = c_string(to_json(&records)?)?;
        Ok(())
    })
}

struct CQueryListener {
    callback: unsafe extern "C" fn(*mut c_void, RowsyncResult, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the caller of `rowsync_engine_watch` promises that the callback
// and `user_data` may be used from the engine's live-query thread.
unsafe impl Send for CQueryListener {}
unsafe impl Sync for CQueryListener {}

impl CQueryListener {
    fn call(&self, result: RowsyncResult, text: String) {
        let Ok(c) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        // SAFETY: see the `Send`/`Sync` note; `c` outlives the call.
        unsafe { (self.callback)(self.user_data, result, c.as_ptr()) }
    }
}

impl rowsync::QueryListener for CQueryListener {
    fn on_result(&self, records: &[Value]) {
        match serde_json::to_string(records) {
            Ok(json) => self.call(RowsyncResult::Ok, json),
            Err(e) => self.call(RowsyncResult::Storage, format!("JSON error: {e}")),
        }
    }

    fn on_error(&self, error: &rowsync::Error) {
        let e = RowsyncError::from(rowsync::Error::Database(error.to_string()));
        self.call(code_of(&e), e.to_string());
    }
}

/// Watches `query_json` (`{"collection", "filters"?, "order"?: {"field",
/// "descending"?}, "limit"?}`): `callback(user_data, result, json)` is
/// called with the records at once (from the engine's live-query thread,
/// right after this returns), then again whenever a local write or a sync
/// changes them, until `*out` is freed with `rowsync_live_query_free`. A
/// burst of writes gives a few calls, the last with the final records;
/// only changes to the query's collection run it again. The query is
/// checked first: an unknown collection or a bad field is
/// `ROWSYNC_RESULT_INVALID_INPUT`, and nothing is called. `user_data` must
/// stay valid until the handle is freed.
#[no_mangle]
pub unsafe extern "C" fn rowsync_engine_watch(
    engine: *const RowsyncEngine,
    query_json: *const c_char,
    callback: RowsyncQueryCallback,
    user_data: *mut c_void,
    out: *mut *mut RowsyncLiveQuery,
) -> RowsyncResult {
    guard(|| {
        let e = handle(engine)?;
        let callback = callback.ok_or_else(|| null("callback"))?;
        check_out(out, "out")?;
        let query = parse_query(query_json)?;
        let inner = e.core().watch(
            &query,
            Arc::new(CQueryListener {
                callback,
                user_data,
            }),
        )?;
        *out = Box::into_raw(Box::new(RowsyncLiveQuery { inner }));
        Ok(())
    })
}

/// How many times the query ran, the first run included (a run whose
/// result did not change calls nothing), into `*out_runs`.
#[no_mangle]
pub unsafe extern "C" fn rowsync_live_query_runs(
    query: *const RowsyncLiveQuery,
    out_runs: *mut u64,
) -> RowsyncResult {
    guard(|| {
        let q = query.as_ref().ok_or_else(|| null("query"))?;
        check_out(out_runs, "out_runs")?;
        *out_runs = q.inner.runs();
        Ok(())
    })
}

/// Stops the watch and frees the handle: once this returns, the callback
/// is never called again (a call in progress on the live-query thread is
/// waited for, unless this is called from inside the callback). NULL is
/// ignored.
#[no_mangle]
pub unsafe extern "C" fn rowsync_live_query_free(query: *mut RowsyncLiveQuery) {
    if !query.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(query))));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::Mutex;

    use super::super::{rowsync_engine_free, rowsync_engine_open, rowsync_string_free};
    use super::*;

    unsafe extern "C" fn collect(
        user_data: *mut c_void,
        result: RowsyncResult,
        json: *const c_char,
    ) {
        let tx = &*(user_data as *const Mutex<Sender<(RowsyncResult, String)>>);
        let text = std::ffi::CStr::from_ptr(json)
            .to_string_lossy()
            .into_owned();
        let _ = tx.lock().unwrap().send((result, text));
    }

    #[test]
    fn a_c_watch_checks_its_query_and_stops_when_freed() {
        let mut e = std::ptr::null_mut();
        assert_eq!(
            unsafe { rowsync_engine_open(c":memory:".as_ptr(), &mut e) },
            RowsyncResult::Ok
        );
        let (tx, rx) = channel::<(RowsyncResult, String)>();
        let tx = Box::new(Mutex::new(tx));
        let user = &*tx as *const _ as *mut c_void;
        let mut q = std::ptr::null_mut();
        for (json, want) in [
            (c"{\"collection\":\"nope\"}", RowsyncResult::InvalidInput),
            (
                c"{\"collection\":\"products\",\"filters\":{\"a b\":1}}",
                RowsyncResult::InvalidInput,
            ),
            (
                c"{\"collection\":\"products\",\"limt\":1}",
                RowsyncResult::InvalidInput,
            ),
            (c"[", RowsyncResult::InvalidInput),
        ] {
            let r = unsafe { rowsync_engine_watch(e, json.as_ptr(), Some(collect), user, &mut q) };
            assert_eq!(r, want, "{json:?}");
            assert!(q.is_null(), "nothing handed out");
        }
        let query = c"{\"collection\":\"products\",\"order\":{\"field\":\"name\"}}";
        let r = unsafe { rowsync_engine_watch(e, query.as_ptr(), None, user, &mut q) };
        assert_eq!(r, RowsyncResult::NullArgument);
        let r = unsafe { rowsync_engine_watch(e, query.as_ptr(), Some(collect), user, &mut q) };
        assert_eq!(r, RowsyncResult::Ok);
        let wait = std::time::Duration::from_secs(60);
        assert_eq!(
            rx.recv_timeout(wait).unwrap(),
            (RowsyncResult::Ok, "[]".into())
        );
        unsafe { (*e).core() }
            .create("products", serde_json::json!({"name": "tea"}))
            .unwrap();
        let (code, json) = rx.recv_timeout(wait).unwrap();
        assert_eq!(code, RowsyncResult::Ok);
        assert!(json.contains("\"tea\""), "{json}");
        let mut runs = 0;
        assert_eq!(
            unsafe { rowsync_live_query_runs(q, &mut runs) },
            RowsyncResult::Ok
        );
        assert_eq!(runs, 2);
        let mut out = std::ptr::null_mut();
        assert_eq!(
            unsafe { rowsync_engine_query(e, query.as_ptr(), &mut out) },
            RowsyncResult::Ok
        );
        assert!(unsafe { std::ffi::CStr::from_ptr(out) }
            .to_str()
            .unwrap()
            .contains("tea"));
        unsafe { rowsync_string_free(out) };
        unsafe { rowsync_live_query_free(q) };
        unsafe { (*e).core() }
            .create("products", serde_json::json!({"name": "cup"}))
            .unwrap();
        unsafe { rowsync_engine_free(e) };
        assert!(rx.try_recv().is_err(), "nothing after free");
    }
}
