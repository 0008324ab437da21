//! Fuzz target: a login answer of either dialect (first byte), as the engine
//! decodes it (rowsync::fuzz_login_answer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rowsync::fuzz_login_answer(data);
});
