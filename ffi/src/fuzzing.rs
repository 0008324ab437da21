//! The fuzz entry point of the C API's JSON inputs (issue 12, part 5):
//! configure, create, put, update and write_group on one in-memory engine
//! per thread, through the real `extern "C"` functions. Hidden from the
//! docs; `fuzz/` and the corpus replay test call it. No input may panic or
//! leak: every call returns a result code, and each string it hands out is
//! freed here.

use std::cell::Cell;
use std::ffi::{c_char, CString};
use std::ptr;

use crate::c_api::{
    rowsync_engine_configure, rowsync_engine_create, rowsync_engine_free, rowsync_engine_get,
    rowsync_engine_open, rowsync_engine_put, rowsync_engine_update, rowsync_engine_write_group,
    rowsync_string_free,
};
use crate::RowsyncEngine;

thread_local! {
    static ENGINE: Cell<*mut RowsyncEngine> = const { Cell::new(ptr::null_mut()) };
}

fn engine() -> *mut RowsyncEngine {
    ENGINE.with(|cell| {
        if cell.get().is_null() {
            let mut e = ptr::null_mut();
            let path = c":memory:";
            // SAFETY: a valid C string and a valid out pointer.
            unsafe { rowsync_engine_open(path.as_ptr(), &mut e) };
            cell.set(e);
        }
        cell.get()
    })
}

/// Closes this thread's engine (the next input opens a fresh one).
pub fn reset() {
    ENGINE.with(|cell| {
        let e = cell.replace(ptr::null_mut());
        // SAFETY: the handle came from `rowsync_engine_open`, or is NULL.
        unsafe { rowsync_engine_free(e) };
    });
}

fn take(out: *mut c_char) {
    // SAFETY: NULL or a string the C API handed out, freed once.
    unsafe { rowsync_string_free(out) };
}

/// The first byte picks the call and the collection; the rest, cut at its
/// first NUL, is the JSON text.
pub fn c_api_json(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let text = rest.split(|&b| b == 0).next().unwrap_or_default();
    let Ok(json) = CString::new(text) else { return };
    let collections = [c"orders", c"orderDetails", c"people", c"products", c"nope"];
    let collection = collections[usize::from(op >> 4) % collections.len()].as_ptr();
    let e = engine();
    let mut out: *mut c_char = ptr::null_mut();
    // SAFETY: a live handle, valid C strings, valid out pointers.
    unsafe {
        match op % 6 {
            0 => {
                rowsync_engine_configure(e, json.as_ptr());
            }
            1 => {
                rowsync_engine_create(e, collection, json.as_ptr(), &mut out);
            }
            2 => {
                rowsync_engine_put(e, collection, json.as_ptr(), &mut out);
            }
            3 => {
                rowsync_engine_update(e, collection, 1, 1, json.as_ptr(), &mut out);
            }
            4 => {
                rowsync_engine_write_group(e, json.as_ptr(), &mut out);
            }
            _ => {
                rowsync_engine_get(e, collection, 1, 1, &mut out);
            }
        }
    }
    take(out);
}
