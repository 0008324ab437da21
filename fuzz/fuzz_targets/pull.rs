//! Fuzz target: a pull answer of either dialect (first byte), as the engine
//! decodes it (rowsync::fuzz_pull_answer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = rowsync::fuzz_pull_answer(data);
});
