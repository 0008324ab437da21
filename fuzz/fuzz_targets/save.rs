//! Fuzz target: a save answer of either dialect (first byte), as the engine
//! decodes it (rowsync::fuzz_save_answer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rowsync::fuzz_save_answer(data);
});
