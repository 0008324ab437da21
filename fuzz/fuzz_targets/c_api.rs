//! Fuzz target: the JSON inputs of the C API (configure, create, put,
//! update, write_group), through the real extern "C" functions.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rowsync_ffi::fuzzing::c_api_json(data);
});
